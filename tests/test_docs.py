"""The docs stay true to the code: the generated variants page, and links that resolve."""

from __future__ import annotations

import glob
import importlib.util
import os
import re

import pytest

from efficientnet_tpu import list_variants
from helpers import REPO

VARIANTS_PAGE = os.path.join(REPO, "docs", "variants.md")


def _generator():
    spec = importlib.util.spec_from_file_location(
        "make_variants_doc", os.path.join(REPO, "scripts", "make_variants_doc.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_variants_page_lists_every_registered_variant_in_order():
    # Cheap: no network is built. Registering a variant without regenerating the page fails here.
    with open(VARIANTS_PAGE, encoding="utf-8") as file:
        names = re.findall(r"^\| `([^`]+)` \|", file.read(), flags=re.MULTILINE)
    assert names == list(list_variants())


@pytest.mark.slow  # builds every variant, B7, V2-L and ResNet-152 included: minutes on 2 cores
def test_variants_page_equals_the_generated_one():
    with open(VARIANTS_PAGE, encoding="utf-8") as file:
        assert file.read() == _generator().render(), "run: python scripts/make_variants_doc.py"


def test_readme_is_a_short_front_door_whose_links_resolve():
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as file:
        readme = file.read()
    assert len(readme.splitlines()) < 200
    pages = [os.path.join(REPO, "README.md"), os.path.join(REPO, "BENCHMARKS.md"),
             *glob.glob(os.path.join(REPO, "docs", "*.md"))]
    for page in pages:
        with open(page, encoding="utf-8") as file:
            text = file.read()
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if "://" in target:
                continue
            path = os.path.normpath(os.path.join(os.path.dirname(page), target))
            assert os.path.exists(path), f"{os.path.relpath(page, REPO)} links to missing {target}"
