"""load_released_checkpoint: the authors' checkpoint layout into our models, checked against Keras Applications.

The checkpoints are written here in the reference layout (names from Keras' own converter, see
tests/reference_checkpoints.py) with random weights, batch-norm statistics far from their start
values and EMA shadows that differ from the raw values, at tiny resolution. "Equal to the reference"
means: Keras Applications' EfficientNet, loaded from the same values by that independent mapping,
gives the same logits as our model loaded by ours.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest

import efficientnet_tpu
from efficientnet_tpu.released import CheckpointError, find_checkpoint, load_released_checkpoint
from efficientnet_tpu.released.loader import released_model_name

import reference_checkpoints as rc

SIZE = 32


def _images(seed: int = 1, size: int = SIZE) -> np.ndarray:
    """Real photographs (scikit-learn's china.jpg and flower.jpg, shipped with it), cropped at
    seeded places and resized by our eval transform."""
    from sklearn.datasets import load_sample_images

    from efficientnet_tpu.data import preprocess_for_eval

    rng = np.random.default_rng(seed)
    crops = []
    for photo in load_sample_images().images:
        top, left = rng.integers(0, 100, 2)
        crops.append(np.asarray(preprocess_for_eval(photo[top:top + 320, left:left + 320], size, 1.0)))
    return np.stack(crops).astype("float32")


@pytest.fixture(scope="module")
def b0_reference(tmp_path_factory):
    keras_model = keras.applications.EfficientNetB0(weights=None, input_shape=(SIZE, SIZE, 3),
                                                    classifier_activation=None)
    values = rc.reference_variables(keras_model, "efficientnet-b0")
    directory = str(tmp_path_factory.mktemp("released") / "efficientnet-b0")
    rc.write_checkpoint(directory, values)
    return keras_model, values, directory


@pytest.mark.parametrize("use_ema", [True, False])
def test_b0_logits_equal_keras_applications_loaded_from_the_same_checkpoint(b0_reference, use_ema):
    keras_model, values, directory = b0_reference
    ours = efficientnet_tpu.build_model("b0", input_shape=(SIZE, SIZE, 3))
    report = efficientnet_tpu.load_released_checkpoint(ours, directory, use_ema=use_ema)
    assert report.used_ema is use_ema and report.model_name == "efficientnet-b0"
    assert report.num_loaded == len([w for w in ours.weights if "seed_generator" not in w.path])
    assert report.not_network == ("global_step",)
    rc.load_into_keras(keras_model, values, "efficientnet-b0", use_ema=use_ema)
    images = _images()
    theirs = np.asarray(keras_model(images, training=False))
    mine = np.asarray(ours(images, training=False))
    assert np.abs(mine - theirs).max() < 1e-4
    assert np.abs(theirs).max() > 0.1  # not a vacuous comparison of zeros


def test_ema_and_raw_weights_give_different_networks(b0_reference):
    _, _, directory = b0_reference
    ema = efficientnet_tpu.build_model("b0", input_shape=(SIZE, SIZE, 3))
    raw = efficientnet_tpu.build_model("b0", input_shape=(SIZE, SIZE, 3))
    load_released_checkpoint(ema, directory, use_ema=True)
    load_released_checkpoint(raw, directory, use_ema=False)
    images = _images()
    assert np.abs(np.asarray(ema(images)) - np.asarray(raw(images))).max() > 1e-3
    # The moving statistics come from the checkpoint, not Keras' (0, 1) start.
    bn = ema.get_layer("stem_bn")
    assert not np.allclose(np.asarray(bn.moving_variance), 1.0)


def test_b1_with_two_first_stage_blocks_equals_keras_applications(tmp_path):
    keras_model = keras.applications.EfficientNetB1(weights=None, input_shape=(SIZE, SIZE, 3),
                                                    classifier_activation=None)
    values = rc.reference_variables(keras_model, "efficientnet-b1", seed=3)
    rc.write_checkpoint(str(tmp_path), values)
    ours = efficientnet_tpu.build_model("b1", input_shape=(SIZE, SIZE, 3))
    load_released_checkpoint(ours, str(tmp_path / "model.ckpt"))  # a prefix works as well as the folder
    rc.load_into_keras(keras_model, values, "efficientnet-b1", use_ema=True)
    images = _images(2)
    assert np.abs(np.asarray(ours(images)) - np.asarray(keras_model(images))).max() < 1e-4


def _lite_or_v2_names(variant: str) -> dict[str, tuple[int, ...]]:
    """The reference names written from the reference builders' rules (not our loader's walk):
    per block, convs conv2d, conv2d_1 in creation order; norms tpu_batch_normalization, _1, _2."""
    from efficientnet_tpu.model.specs import resolve_blocks

    spec = efficientnet_tpu.get_spec(variant)
    scope = released_model_name(variant)
    bn_vars = ("gamma", "beta", "moving_mean", "moving_variance")
    shapes: dict[str, tuple[int, ...]] = {f"{scope}/stem/conv2d/kernel": (3, 3, 3, spec.stem_out)}
    shapes.update({f"{scope}/stem/tpu_batch_normalization/{v}": (spec.stem_out,) for v in bn_vars})
    for i, b in enumerate(resolve_blocks(spec)):
        at = f"{scope}/blocks_{i}"
        k, inner = b.kernel_size, b.inner_channels
        fused = b.block == "fused_mbconv"
        expands = b.expand_ratio != 1
        layers: list[tuple[str, tuple[int, ...], int]] = []  # (kind, kernel shape, BN width)
        if fused:
            layers = ([("conv", (k, k, b.in_channels, inner), inner), ("conv", (1, 1, inner, b.out_channels),
                                                                           b.out_channels)]
                      if expands else [("conv", (k, k, b.in_channels, b.out_channels), b.out_channels)])
        else:
            layers = ([("conv", (1, 1, b.in_channels, inner), inner)] if expands else []) + [
                ("dw", (k, k, inner, 1), inner), ("conv", (1, 1, inner, b.out_channels), b.out_channels)]
        convs = 0
        for norm, (kind, kernel, width) in enumerate(layers):
            if kind == "dw":
                shapes[f"{at}/depthwise_conv2d/depthwise_kernel"] = kernel
            else:
                shapes[f"{at}/{'conv2d' if convs == 0 else f'conv2d_{convs}'}/kernel"] = kernel
                convs += 1
            bn = "tpu_batch_normalization" if norm == 0 else f"tpu_batch_normalization_{norm}"
            shapes.update({f"{at}/{bn}/{v}": (width,) for v in bn_vars})
        if b.se_ratio > 0:
            squeeze = max(1, int(b.in_channels * b.se_ratio))
            shapes[f"{at}/se/conv2d/kernel"] = (1, 1, inner, squeeze)
            shapes[f"{at}/se/conv2d/bias"] = (squeeze,)
            shapes[f"{at}/se/conv2d_1/kernel"] = (1, 1, squeeze, inner)
            shapes[f"{at}/se/conv2d_1/bias"] = (inner,)
    shapes[f"{scope}/head/conv2d/kernel"] = (1, 1, resolve_blocks(spec)[-1].out_channels, spec.head_out)
    shapes.update({f"{scope}/head/tpu_batch_normalization/{v}": (spec.head_out,) for v in bn_vars})
    shapes[f"{scope}/head/dense/kernel"] = (spec.head_out, 1000)
    shapes[f"{scope}/head/dense/bias"] = (1000,)
    return shapes


def _values(shapes: dict[str, tuple[int, ...]], seed: int = 0, ema: bool = True) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    values = {}
    for name, shape in shapes.items():
        values[name] = rc.random_value(name, shape, rng)
        if ema:
            values[name + rc.EMA] = values[name] + 0.01
    return values


@pytest.mark.parametrize("variant", ["lite0", "v2_b0"])
def test_lite_and_v2_checkpoints_load_every_variable_by_name(tmp_path, variant):
    values = _values(_lite_or_v2_names(variant))
    # An RMSProp slot, as the released training checkpoints carry: not a weight, not an error.
    scope = released_model_name(variant)
    values[f"{scope}/stem/conv2d/kernel/RMSProp"] = values[f"{scope}/stem/conv2d/kernel"]
    rc.write_checkpoint(str(tmp_path), values)
    model = efficientnet_tpu.build_model(variant, input_shape=(SIZE, SIZE, 3))
    report = load_released_checkpoint(model, str(tmp_path))
    assert report.optimizer_slots == 1
    from efficientnet_tpu.released.names import reference_names

    for weight, name in reference_names(model, scope):
        np.testing.assert_array_equal(np.asarray(weight), values[name + rc.EMA])
    assert report.num_loaded == len(values) // 2


def test_a_checkpoint_without_shadows_loads_its_raw_weights(tmp_path):
    values = _values(_lite_or_v2_names("lite0"), ema=False)
    rc.write_checkpoint(str(tmp_path), values)
    model = efficientnet_tpu.build_model("lite0", input_shape=(SIZE, SIZE, 3))
    report = load_released_checkpoint(model, str(tmp_path), use_ema=True)
    assert not report.used_ema
    kernel = values["efficientnet-lite0/stem/conv2d/kernel"]
    np.testing.assert_array_equal(np.asarray(model.get_layer("stem_conv").kernel), kernel)


def test_another_class_count_loads_the_backbone_only_when_asked(b0_reference):
    _, values, directory = b0_reference
    model = efficientnet_tpu.build_model("b0", input_shape=(SIZE, SIZE, 3), num_classes=5)
    with pytest.raises(CheckpointError, match=r"head/dense/kernel.*\(1280, 1000\).*include_head=False"):
        load_released_checkpoint(model, directory)
    fresh = np.asarray(model.get_layer("predictions").kernel).copy()
    report = load_released_checkpoint(model, directory, include_head=False)
    assert not report.head_loaded
    np.testing.assert_array_equal(np.asarray(model.get_layer("predictions").kernel), fresh)
    np.testing.assert_array_equal(np.asarray(model.get_layer("top_conv").kernel),
                                  values["efficientnet-b0/head/conv2d/kernel" + rc.EMA])


# ---------------------------------------------------------------- bad checkpoints: one clear error each
def _rewrite(tmp_path, values, **changes):
    values = dict(values)
    for name, value in changes.items():
        if value is None:
            values.pop(name)
        else:
            values[name] = value
    directory = str(tmp_path / "bad")
    rc.write_checkpoint(directory, values)
    return directory


def _unchanged_after(model, fn):
    before = [np.asarray(w).copy() for w in model.weights]
    fn()
    assert all(np.array_equal(a, np.asarray(w)) for a, w in zip(before, model.weights))


def test_missing_variable_is_named(tmp_path, b0_reference):
    _, values, _ = b0_reference
    gone = "efficientnet-b0/blocks_3/tpu_batch_normalization_1/moving_mean" + rc.EMA
    directory = _rewrite(tmp_path, values, **{gone: None})
    model = efficientnet_tpu.build_model("b0", input_shape=(SIZE, SIZE, 3))

    def load():
        with pytest.raises(CheckpointError, match=gone.replace("/", ".")):
            load_released_checkpoint(model, directory)
    _unchanged_after(model, load)


def test_extra_variable_is_named(tmp_path, b0_reference):
    _, values, _ = b0_reference
    extra = "efficientnet-b0/blocks_3/se/conv2d_2/kernel"
    directory = _rewrite(tmp_path, values, **{extra: np.zeros((1, 1, 4, 4), "float32")})
    model = efficientnet_tpu.build_model("b0", input_shape=(SIZE, SIZE, 3))
    with pytest.raises(CheckpointError, match="e.g. " + extra):
        load_released_checkpoint(model, directory)


def test_misshaped_variable_is_named(tmp_path, b0_reference):
    _, values, _ = b0_reference
    name = "efficientnet-b0/blocks_5/depthwise_conv2d/depthwise_kernel" + rc.EMA
    directory = _rewrite(tmp_path, values, **{name: np.zeros((5, 5, 240, 1), "float32")})
    model = efficientnet_tpu.build_model("b0", input_shape=(SIZE, SIZE, 3))
    with pytest.raises(CheckpointError, match=r"depthwise_kernel/ExponentialMovingAverage has shape \(5, 5, 240, 1\)"):
        load_released_checkpoint(model, directory)


def test_another_variant_is_refused_with_the_fix(b0_reference):
    _, _, directory = b0_reference
    model = efficientnet_tpu.build_model("b1", input_shape=(SIZE, SIZE, 3))
    with pytest.raises(CheckpointError, match=r"of efficientnet-b0, but the model is efficientnet-b1.*--variant=b0"):
        load_released_checkpoint(model, directory)


def test_a_v2_checkpoint_for_a_v1_variant_is_refused(tmp_path):
    rc.write_checkpoint(str(tmp_path), _values(_lite_or_v2_names("v2_b0"), ema=False))
    model = efficientnet_tpu.build_model("b0", input_shape=(SIZE, SIZE, 3))
    with pytest.raises(CheckpointError, match=r"EfficientNetV2 .*efficientnetv2-b0.*--variant=v2_b0"):
        load_released_checkpoint(model, str(tmp_path))


def test_not_a_checkpoint_and_a_truncated_one(tmp_path, b0_reference):
    model = efficientnet_tpu.build_model("b0", input_shape=(SIZE, SIZE, 3))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="without a tf.train checkpoint"):
        load_released_checkpoint(model, str(tmp_path / "empty"))
    with pytest.raises(CheckpointError, match="not a tf.train checkpoint"):
        load_released_checkpoint(model, str(tmp_path / "nothing_here"))
    _, values, _ = b0_reference
    directory = _rewrite(tmp_path, values)
    data = [f for f in os.listdir(directory) if ".data-" in f][0]
    path = os.path.join(directory, data)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    with pytest.raises(CheckpointError, match="truncated"):
        load_released_checkpoint(model, directory)


def test_a_study_variant_has_no_released_checkpoint(b0_reference):
    _, _, directory = b0_reference
    model = efficientnet_tpu.build_model("b0_seend", input_shape=(SIZE, SIZE, 3))
    with pytest.raises(CheckpointError, match="released no checkpoint of variant 'b0_seend'"):
        load_released_checkpoint(model, directory)


def test_find_checkpoint_accepts_folder_and_prefix(b0_reference):
    _, _, directory = b0_reference
    assert find_checkpoint(directory) == os.path.join(directory, "model.ckpt")
    assert find_checkpoint(os.path.join(directory, "model.ckpt")) == os.path.join(directory, "model.ckpt")


def test_v2_b0_logits_equal_keras_applications_loaded_from_the_same_checkpoint(tmp_path):
    keras_model = keras.applications.EfficientNetV2B0(weights=None, input_shape=(SIZE, SIZE, 3),
                                                      classifier_activation=None)
    values = rc.reference_variables(keras_model, "efficientnetv2-b0", seed=9)
    rc.write_checkpoint(str(tmp_path), values)
    ours = efficientnet_tpu.build_model("v2_b0", input_shape=(SIZE, SIZE, 3))
    report = load_released_checkpoint(ours, str(tmp_path))
    assert report.model_name == "efficientnetv2-b0" and report.used_ema
    rc.load_into_keras(keras_model, values, "efficientnetv2-b0", use_ema=True)
    images = _images(4)
    theirs = np.asarray(keras_model(images, training=False))
    assert np.abs(np.asarray(ours(images, training=False)) - theirs).max() < 1e-4
    assert np.abs(theirs).max() > 0.1


def test_a_checkpoint_file_naming_the_authors_own_paths_still_finds_the_local_prefix(tmp_path, b0_reference):
    _, values, _ = b0_reference
    directory = _rewrite(tmp_path, values)
    with open(os.path.join(directory, "checkpoint"), "w", encoding="utf-8") as f:
        f.write('model_checkpoint_path: "/placer/prod/home/efficientnet/model.ckpt-218380"\n')
    assert find_checkpoint(directory) == os.path.join(directory, "model.ckpt")
