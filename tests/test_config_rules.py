"""Every TrainConfig setting's accepted values are declared beside its field: the checks, the flag help and
the YAML errors come from that declaration, before TensorFlow loads."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from efficientnet_tpu import settings
from efficientnet_tpu.data import choices as data_choices
from efficientnet_tpu.training import config as config_lib
from helpers import QUIET, REPO, subprocess_env

# The fields that accept any value of their type, and why. A new field with a fixed set of values or a bound
# must declare a rule (settings.setting(..., rule)); one that truly has none is added here with its reason.
NO_RULE = {
    "variant": "a model-package name, checked against list_variants() when the network is set up",
    "init_weights": "a file or run path",
    "model_overrides": "ModelSpec fields, checked against the variant when the run starts",
    "init_checkpoint": "a checkpoint path",
    "data_dir": "a path",
    "model_dir": "a path (required: validate's cross-field checks)",
    "tpu": "auto, local, a TPU name or grpc://host:port",
    "export_dir": "a path",
    "seed": "any integer",
    "progressive": "a recipe file or name, read when the run starts",
    "class_names": "set by resolve from the dataset",
}


def test_every_field_with_choices_or_bounds_declares_its_rule():
    assert set(NO_RULE) <= set(config_lib.FIELDS)
    for name, field in config_lib.FIELDS.items():
        rule = settings.rule_of(field)
        if config_lib.field_type(name) is bool or name in NO_RULE:
            assert rule is None, f"{name} declares a rule: take it out of NO_RULE"
        else:
            assert rule is not None, f"{name} has no rule: declare its choices or bounds (or add it to NO_RULE)"


def test_the_data_fields_use_the_pipelines_declarations():
    fields = config_lib.FIELDS
    for name, rule in (("dataset", data_choices.DATASET), ("augment", data_choices.AUGMENT),
                       ("augment_semantics", data_choices.SEMANTICS), ("crop_area_min", data_choices.CROP_AREA),
                       ("crop_area_max", data_choices.CROP_AREA), ("eval_crop_fraction", data_choices.CROP_FRACTION),
                       ("randaugment_num_layers", data_choices.RANDAUGMENT_LAYERS),
                       ("randaugment_magnitude", data_choices.RANDAUGMENT_MAGNITUDE),
                       ("mixup_alpha", data_choices.MIX_ALPHA), ("cutmix_alpha", data_choices.MIX_ALPHA)):
        assert settings.rule_of(fields[name]) is rule, name


def test_the_flag_help_lists_the_accepted_values_and_the_help_text_does_not():
    from efficientnet_tpu import train

    train.define_flags()
    assert train.FLAGS["dataset"].help.endswith(f"[one of {', '.join(data_choices.DATASET_NAMES)}]")
    assert train.FLAGS["augment"].help.endswith("[one of none, default, randaugment, autoaugment, seed003]")
    assert train.FLAGS["train_batch_size"].help.endswith("[>= 1]")
    assert train.FLAGS["label_smoothing"].help.endswith("[in [0, 1)]")
    assert train.FLAGS["phi"].help.endswith("[a finite number] (float; empty: unset)")
    assert train.FLAGS["sync_batch_norm_groups"].help.endswith("[one of all, reference or a positive integer]")
    for name, field in config_lib.FIELDS.items():
        rule = settings.rule_of(field)
        if rule is not None and rule.choices is not None and len(rule.choices) > 2:
            # Listed once, by the declaration: no hand-written copy to fall out of date.
            assert ", ".join(map(str, rule.choices[:3])) not in field.metadata["help"], name


@pytest.mark.parametrize("text, message", [
    ("augment: randaugmnt\n", "augment='randaugmnt' is not one of none, default, randaugment, autoaugment, seed003"),
    ("dataset: cifar\n", f"dataset='cifar' is not one of {', '.join(data_choices.DATASET_NAMES)}"),
    ("crop_area_min: 0\n", "crop_area_min must be in (0, 1], got 0"),
    ("train_batch_size: 0\n", "train_batch_size must be >= 1, got 0"),
    ("sync_batch_norm_groups: some\n", "sync_batch_norm_groups='some' is not one of all, reference or a positive "
                                       "integer"),
])
def test_a_bad_value_in_a_config_file_names_the_file_the_key_and_the_accepted_values(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError) as error:
        config_lib.load_yaml(str(path))
    assert str(error.value) == f"{path}: {message}"
    # Through merge too (the trainer's --config and a study's recipe), with the layer's source.
    with pytest.raises(ValueError) as error:
        config_lib.merge({"model_dir": "/m"}, yaml.safe_load(text), sources=(config_lib.COMMAND_LINE, "trial t"))
    assert str(error.value) == f"trial t: {message}"


def test_command_line_values_are_named_as_flags():
    with pytest.raises(ValueError, match=r"^--mode='fit' is not one of train, eval, train_and_eval$"):
        config_lib.merge({"mode": "fit"}, sources=(config_lib.COMMAND_LINE,))
    with pytest.raises(ValueError, match=r"^--lr_reference_batch must be >= 1 \(or empty for no scaling\), got 0$"):
        config_lib.merge({"model_dir": "/m", "lr_reference_batch": 0})


def test_replace_checks_the_rules_too():
    config = config_lib.merge({"model_dir": "/m"})
    with pytest.raises(ValueError, match=r"^--momentum must be in \[0, 1\), got 1$"):
        config_lib.replace(config, momentum=1.0)
    with pytest.raises(ValueError, match=r"^--epochs must be a finite number > 0, got inf$"):
        config_lib.replace(config, epochs=float("inf"))


@pytest.mark.parametrize("changes, message", [
    ({"alpha": 1.2}, "--alpha overrides a compound-scaling coefficient and needs --phi"),
    ({"crop_area_min": 0.6, "crop_area_max": 0.5}, "--crop_area_min (0.6) must not exceed --crop_area_max (0.5)"),
    ({"num_cpu_replicas": 2}, "--num_cpu_replicas > 1 needs --strategy=cpu"),
    ({"init_checkpoint": "/c", "init_weights": "/w.h5"}, "give --init_checkpoint"),
])
def test_the_cross_field_checks_remain(changes, message):
    with pytest.raises(ValueError) as error:
        config_lib.merge({"model_dir": "/m", **changes})
    assert str(error.value).startswith(message)


def test_a_bad_dataset_or_augment_fails_at_config_time_without_tensorflow(tmp_path):
    (tmp_path / "bad.yaml").write_text("augment: autoagment\n")
    script = (
        "import sys\n"
        "from efficientnet_tpu import train\n"
        f"run = {str(tmp_path / 'run')!r}\n"
        "statuses = [train.main_cli(['train', '--model_dir=' + run, *args]) for args in\n"
        "            (['--dataset=mnist'], ['--augment=rand'], ['--config=' + "
        f"{str(tmp_path / 'bad.yaml')!r}])]\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF was imported'\n"
        "print(statuses)\n")
    done = subprocess.run([sys.executable, "-c", script], env=subprocess_env(**QUIET), capture_output=True,
                          text=True, timeout=300, cwd=REPO, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[2, 2, 2]"
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: --dataset='mnist' is not one of {', '.join(data_choices.DATASET_NAMES)}",
        "error: --augment='rand' is not one of none, default, randaugment, autoaugment, seed003",
        f"error: {tmp_path / 'bad.yaml'}: augment='autoagment' is not one of none, default, randaugment, "
        "autoaugment, seed003",
    ], done.stderr


def test_flag_definitions_cover_every_field_but_class_names_with_its_default():
    flags = list(config_lib.flag_definitions())
    assert [f.name for f in flags] == [n for n in config_lib.FIELDS if n != "class_names"]
    by_name = {f.name: f for f in flags}
    assert (by_name["phi"].kind, by_name["phi"].default) == ("string", None)
    assert (by_name["epochs"].kind, by_name["epochs"].default) == ("string", "350.0")
    assert (by_name["use_ema"].kind, by_name["train_batch_size"].kind) == ("boolean", "integer")
