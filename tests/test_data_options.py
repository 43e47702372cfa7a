"""DataOptions: the data settings checked once, in one line naming the option, made from a
TrainConfig by name; and every source, synthetic included, goes the pipeline's one way."""

import dataclasses
import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from efficientnet_tpu import settings  # noqa: E402
from efficientnet_tpu.data import choices  # noqa: E402
from efficientnet_tpu.data.options import DataOptions  # noqa: E402
from helpers import subprocess_env  # noqa: E402


@pytest.mark.parametrize("changes, message", [
    ({"augment": "mixup"}, "DataOptions.augment='mixup' is not one of none, default, randaugment"),
    ({"randaugment_num_layers": -1}, "DataOptions.randaugment_num_layers must be >= 0, got -1"),
    ({"randaugment_num_layers": 1.5}, "DataOptions.randaugment_num_layers must be >= 0, got 1.5"),
    ({"randaugment_magnitude": 50}, r"DataOptions.randaugment_magnitude must be in \[0, 30\]"),
    ({"augment_semantics": "exact"}, "DataOptions.augment_semantics='exact' is not one of reference, paper"),
    ({"crop_area_min": 0.0}, r"DataOptions.crop_area_min must be in \(0, 1\], got 0"),
    ({"crop_area_max": 1.5}, r"DataOptions.crop_area_max must be in \(0, 1\], got 1.5"),
    ({"crop_area_min": 0.5, "crop_area_max": 0.2}, r"DataOptions.crop_area_min \(0.5\) must be <= "),
    ({"random_flip": "no"}, "DataOptions.random_flip='no' is not one of False, True"),
    ({"eval_crop_fraction": 2.0}, r"DataOptions.eval_crop_fraction must be in \(0, 1\], got 2"),
    ({"resize_method": "nearest"}, "DataOptions.resize_method='nearest' is not one of bicubic, bilinear"),
    ({"mixup_alpha": -0.1}, r"DataOptions.mixup_alpha must be a finite number >= 0 \(0 turns it off\), got -0.1"),
    ({"cutmix_alpha": float("inf")}, "DataOptions.cutmix_alpha must be a finite number >= 0"),
    ({"num_classes": 0}, "DataOptions.num_classes must be >= 1, got 0"),
    ({"dtype": "int32"}, "DataOptions.dtype='int32' is not one of float32, bfloat16, float16"),
    ({"seed": -1}, "DataOptions.seed must be >= 0, got -1"),
    ({"deterministic": "yes"}, "DataOptions.deterministic='yes' is not one of False, True"),
])
def test_each_bad_option_is_one_line_naming_it(changes, message):
    with pytest.raises(ValueError, match=message) as raised:
        DataOptions(**changes)
    assert "\n" not in str(raised.value)
    # A per-stage change is checked again.
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(DataOptions(), **changes)


def test_the_bounds_are_the_shared_rules_of_data_choices():
    rules = {field.name: settings.rule_of(field) for field in dataclasses.fields(DataOptions)}
    assert rules["augment"] is choices.AUGMENT and rules["augment_semantics"] is choices.SEMANTICS
    assert rules["crop_area_min"] is rules["crop_area_max"] is choices.CROP_AREA
    assert rules["eval_crop_fraction"] is choices.CROP_FRACTION
    assert rules["randaugment_num_layers"] is choices.RANDAUGMENT_LAYERS
    assert rules["randaugment_magnitude"] is choices.RANDAUGMENT_MAGNITUDE
    assert rules["mixup_alpha"] is rules["cutmix_alpha"] is choices.MIX_ALPHA
    assert rules["resize_method"] is choices.RESIZE_METHOD


def test_a_tf_dtype_names_itself_and_the_options_stay_hashable():
    import tensorflow as tf

    options = DataOptions(dtype=tf.bfloat16, seed=3)
    assert options.dtype == "bfloat16" and options == DataOptions(dtype="bfloat16", seed=3)
    assert hash(options) == hash(DataOptions(dtype="bfloat16", seed=3))


def test_from_config_copies_every_field_a_train_config_shares_by_name():
    from efficientnet_tpu.training import config as config_lib
    from efficientnet_tpu.training.config import TrainConfig

    shared = {field.name for field in dataclasses.fields(DataOptions)} & {
        field.name for field in dataclasses.fields(TrainConfig)}
    # What the config does not hold comes from the run: the stream's dtype and the variant's resize.
    assert {field.name for field in dataclasses.fields(DataOptions)} - shared == {"dtype", "resize_method"}
    config = config_lib.merge({"model_dir": "/tmp/x", "augment": "randaugment", "randaugment_num_layers": 3,
                               "randaugment_magnitude": 7, "crop_area_min": 0.5, "crop_area_max": 0.9,
                               "random_flip": False, "augment_semantics": "paper", "eval_crop_fraction": 0.8,
                               "mixup_alpha": 0.2, "cutmix_alpha": 1.0, "num_classes": 10, "seed": 5,
                               "deterministic": True})
    options = DataOptions.from_config(config, dtype="bfloat16", resize_method="bilinear")
    assert all(getattr(options, name) == getattr(config, name) for name in shared)
    assert (options.dtype, options.resize_method) == ("bfloat16", "bilinear")
    assert options.crop_area_range == (0.5, 0.9) and options.mixes


def test_options_load_without_tensorflow():
    script = ("import sys; from efficientnet_tpu.data.options import DataOptions; DataOptions(seed=1); "
              "assert 'tensorflow' not in sys.modules, 'tensorflow imported'; print('OK')")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=subprocess_env(), timeout=120)
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr[-2000:]


# -- one pipeline path for every source --------------------------------------------------------------


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("options_folder")
    rng = np.random.default_rng(0)
    for split in ("train", "validation"):
        for label in ("a", "b"):
            os.makedirs(root / split / label)
            for index in range(3):
                Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(
                    root / split / label / f"{index}.png")
    return str(root)


@pytest.mark.parametrize("name", ["digits", "folder", "synthetic"])
@pytest.mark.parametrize("training", [True, False])
def test_every_source_goes_through_the_same_pipeline_path(monkeypatch, folder, name, training):
    """get_source, check_split, Source.make_batches (the source's own batches, or None: read, augment and
    batch here), then mixing and the tf.data options: no source is special-cased by its class."""
    import tensorflow as tf

    from efficientnet_tpu.data import build_dataset, dataset_info, pipeline
    from efficientnet_tpu.data.sources import Stream

    made, built = [], []
    get_source = pipeline.get_source

    def recording_get_source(*args):
        source = get_source(*args)
        own = source.make_batches

        def make_batches(split, stream):
            made.append((split, stream, own(split, stream)))
            return made[-1][2]
        source.make_batches = make_batches
        return source

    for stage in ("_training_dataset", "_eval_dataset"):
        original = getattr(pipeline, stage)
        monkeypatch.setattr(pipeline, stage, lambda *args, _original=original, _stage=stage: (
            built.append(_stage), _original(*args))[1])
    monkeypatch.setattr(pipeline, "get_source", recording_get_source)

    data_dir = folder if name == "folder" else None
    info = dataset_info(name, data_dir)
    split = info.train_split if training else info.eval_split
    options = DataOptions(seed=3, deterministic=True, dtype="bfloat16", mixup_alpha=0.5, num_classes=7)
    dataset = build_dataset(name, split, global_batch_size=4, image_size=16, training=training,
                            options=options, data_dir=data_dir)
    assert [(s, stream) for s, stream, _ in made] == [(split, Stream(
        training=training, num_shards=1, shard_index=0, batch_size=4, shard_batch=4, image_size=16,
        dtype=tf.bfloat16, seed=3))]
    own_batches = made[0][2] is not None
    assert own_batches == (name == "synthetic")
    assert built == ([] if own_batches else ["_training_dataset" if training else "_eval_dataset"])
    batch = next(iter(dataset))
    assert batch[0].shape == (4, 16, 16, 3) and batch[0].dtype == tf.bfloat16
    # Mixing applies to every source's training stream alike (one-hot-mixed labels), never to eval.
    assert batch[1].shape == ((4, 7) if training else (4,))
    assert dataset.options().deterministic


def test_the_pipeline_never_asks_which_source_it_has():
    import inspect

    from efficientnet_tpu.data import pipeline

    text = inspect.getsource(pipeline)
    assert "isinstance(source" not in text and "SyntheticSource" not in text


# -- the resize method: the variant's in training as in eval ----------------------------------------------


def test_training_resizes_with_the_options_method(folder):
    """augment=none trains on the eval transform, so it shows the resize: bilinear differs from bicubic."""
    import tensorflow as tf

    from efficientnet_tpu.data import build_dataset, preprocess_for_eval

    def first(method):
        options = DataOptions(augment="none", seed=0, deterministic=True, resize_method=method)
        return next(iter(build_dataset("digits", "train", global_batch_size=4, image_size=20, training=True,
                                       options=options)))[0].numpy()

    bilinear, bicubic = first("bilinear"), first("bicubic")
    assert np.abs(bilinear - bicubic).max() > 1.0
    # The Inception crop of encoded images resizes by the option too.
    from efficientnet_tpu.data.preprocessing import inception_crop

    image = tf.io.read_file(os.path.join(folder, "train", "a", "0.png"))
    seed = tf.constant([1, 2], tf.int64)
    crops = {method: inception_crop(image, 40, seed, area_range=(1.0, 1.0), method=method).numpy()
             for method in ("bilinear", "bicubic")}
    np.testing.assert_allclose(crops["bilinear"], preprocess_for_eval(image, 40, None, "bilinear"), atol=1e-3)
    assert np.abs(crops["bilinear"] - crops["bicubic"]).max() > 1.0


def test_a_lite_run_trains_and_evaluates_with_bilinear_resizing(monkeypatch):
    import tensorflow as tf

    from efficientnet_tpu import run as run_lib
    from efficientnet_tpu.training import config as config_lib

    seen = []
    monkeypatch.setattr(run_lib.data_lib, "build_dataset", lambda *args, **kwargs: seen.append(kwargs))
    info = run_lib.data_lib.dataset_info("synthetic")
    for variant, method in (("lite0", "bilinear"), ("b0", "bicubic")):
        seen.clear()
        config = config_lib.merge({"model_dir": "/tmp/x", "dataset": "synthetic", "variant": variant,
                                   "resolution": 32, "num_classes": 10})
        train_fn, eval_fn = run_lib.input_fns(config, info, "cpu")
        train_fn(tf.distribute.InputContext())
        eval_fn(tf.distribute.InputContext())
        assert [kwargs["options"].resize_method for kwargs in seen] == [method, method]
        assert [kwargs["training"] for kwargs in seen] == [True, False]
