"""The shipped ImageNet recipes: what each says it reproduces, and a smoke run of each.

The recipes' values come from tensorflow/tpu models/official/efficientnet:
main.py (flags: augment_name, randaug_num_layers / randaug_magnitude,
mixup_alpha 0) and its README (AutoAugment checkpoints; RandAugment for B5
with magnitude 17 and B7 with 28, 83.9% / 85.0%).
"""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest

from efficientnet_tpu.training import config as config_lib
from helpers import REPO

RECIPES = sorted(glob.glob(os.path.join(REPO, "configs", "imagenet*.yaml")))
NAMES = [os.path.basename(path) for path in RECIPES]


def header(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return "".join(line for line in f if line.startswith("#"))


def test_the_recipes_are_the_papers():
    assert {"imagenet.yaml", "imagenet_randaugment_b5.yaml", "imagenet_randaugment_b7.yaml"} <= set(NAMES)
    recipes = {name: config_lib.load_yaml(path) for name, path in zip(NAMES, RECIPES)}
    for name, recipe in recipes.items():
        # Grouped batch norm as TpuBatchNormalization, reference-semantics augmentation.
        assert recipe["sync_batch_norm"] is True and recipe["sync_batch_norm_groups"] == "reference", name
        assert recipe["augment_semantics"] == "reference", name
        # V1 is AdvProp-free and mixup-free (main.py: mixup_alpha defaults to 0).
        assert not any(recipe.get(key) for key in recipe if "mixup" in key or "cutmix" in key), name
        assert "Targets ImageNet top-1" in header(RECIPES[NAMES.index(name)]), name
    assert recipes["imagenet.yaml"]["augment"] == "autoaugment"
    assert "77.1" in header(RECIPES[NAMES.index("imagenet.yaml")])  # the paper's B0
    for variant, magnitude, target in (("b5", 17, "83.9"), ("b7", 28, "85.0")):
        recipe = recipes[f"imagenet_randaugment_{variant}.yaml"]
        assert (recipe["variant"], recipe["augment"]) == (variant, "randaugment")
        assert (recipe["randaugment_num_layers"], recipe["randaugment_magnitude"]) == (2, magnitude)
        assert target in header(RECIPES[NAMES.index(f"imagenet_randaugment_{variant}.yaml")])


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    """A two-class image folder cut from scikit-learn's sample photographs (the ImageNet-like decode path)."""
    from PIL import Image
    from sklearn.datasets import load_sample_image

    root = tmp_path_factory.mktemp("photos")
    for label, name in enumerate(("china.jpg", "flower.jpg")):
        image = load_sample_image(name)
        for split, count in (("train", 4), ("validation", 2)):
            folder = root / split / f"class{label}"
            folder.mkdir(parents=True)
            for i in range(count):
                crop = image[40 * i:40 * i + 160, 60 * i:60 * i + 200]
                Image.fromarray(np.ascontiguousarray(crop)).save(folder / f"{i}.jpg")
    return str(root)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_each_recipe_trains_two_steps(name, photo_folder, tmp_path):
    """The recipe as shipped (its augmentation, optimizer, schedule, EMA, grouped batch norm) with
    only the sizes made tiny: a B0 at phi -4, 32 px, batch 4, two steps on decoded JPEGs."""
    from efficientnet_tpu.run import run

    recipe = config_lib.load_yaml(RECIPES[NAMES.index(name)])
    tiny = dict(variant="b0", phi=-4.0, resolution=32, dataset="folder", data_dir=photo_folder,
                train_batch_size=4, eval_batch_size=4, train_steps=2, steps_per_loop=1,
                checkpoint_every_steps=2, precision="float32", mode="train", strategy="cpu",
                model_dir=str(tmp_path / "run"), seed=1)
    config = config_lib.merge(recipe, tiny)
    assert config.augment == recipe["augment"] and config.sync_batch_norm
    result = run(config, progress=False)
    assert result["step"] == 2
