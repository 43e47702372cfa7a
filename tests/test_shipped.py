"""The shipped recipes and study specs are found by name from any directory: in this checkout, and in an
installed package laid out as the wheel lays it out (efficientnet_tpu/configs/), with no checkout around."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from efficientnet_tpu import shipped
from efficientnet_tpu.training import config as config_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_recipe_by_name_and_by_checkout_path_from_another_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    expected = os.path.join(ROOT, "configs", "imagenet.yaml")
    for given in ("imagenet", "imagenet.yaml", "configs/imagenet.yaml", "./configs/imagenet.yaml"):
        assert shipped.find_recipe(given) == expected, given
    assert config_lib.load_yaml("digits_demo")["dataset"] == "digits"
    assert config_lib.load_yaml("configs/digits_demo.yaml")["dataset"] == "digits"  # the README's form
    assert "imagenet" in shipped.recipe_names() and "digits_demo" in shipped.recipe_names()


def test_an_existing_path_wins_over_the_shipped_recipe(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "imagenet.yaml").write_text("variant: b1\n")
    assert config_lib.load_yaml("configs/imagenet.yaml") == {"variant": "b1"}
    (tmp_path / "imagenet").write_text("variant: b2\n")
    assert config_lib.load_yaml("imagenet") == {"variant": "b2"}  # a file of that name, as today


def test_an_unknown_recipe_names_the_shipped_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"config file imagenett does not exist; shipped recipes "
                                                r"\(give --config=NAME\): .*imagenet"):
        config_lib.load_yaml("imagenett")
    assert shipped.find_recipe("other/dir/imagenet.yaml") == "other/dir/imagenet.yaml"  # not ours to guess


INSTALLED_PROBE = r"""
import json, os, sys
from efficientnet_tpu import shipped
from efficientnet_tpu.studies import spec
from efficientnet_tpu.training import config as config_lib
studies = [name for name, _ in spec.list_studies()]
loaded = spec.load_spec("se_placement")
trials = spec.expand(loaded, "cpu", study_dir="runs/x").trials
print(json.dumps({"configs": shipped.configs_dir(), "studies": studies, "spec": loaded.path,
                  "trials": len(trials), "dataset": trials[0].config.dataset,
                  "imagenet": config_lib.load_yaml("imagenet")["dataset"],
                  "readme_path": config_lib.load_yaml("configs/digits_demo.yaml")["dataset"]}))
"""


def test_an_installed_package_finds_its_own_configs_outside_a_checkout(tmp_path):
    site = tmp_path / "site-packages"
    package = site / "efficientnet_tpu"
    shutil.copytree(os.path.join(ROOT, "efficientnet_tpu"), package,
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(os.path.join(ROOT, "configs"), package / "configs")  # what setup.py's package_dir ships
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", INSTALLED_PROBE], cwd=elsewhere, capture_output=True, text=True,
                          env=dict(env, PYTHONPATH=str(site)), timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.splitlines()[-1])
    assert got["configs"] == str(package / "configs")
    assert "se_placement" in got["studies"] and got["spec"].startswith(str(package))
    assert got["trials"] >= 1 and got["dataset"] == "digits"
    assert got["imagenet"] == "imagenet2012" and got["readme_path"] == "digits"
