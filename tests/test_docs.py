"""The docs stay true to the code: the generated variants page, links that resolve, file names that exist."""

from __future__ import annotations

import ast
import glob
import importlib.util
import io
import os
import re
import tokenize

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


# A file name as prose writes it: `efficientnet_tpu/model/specs.py`, `docs/model.md`, `digits_demo.yaml`.
FILE_REFERENCE = re.compile(r"(?<![\w./-])((?:[\w.-]+/)*[\w-]+\.(?:py|md|yaml|yml|json|ipynb|toml|cfg|ini|txt|sh))"
                            r"(?![\w/])")
# Files the docs tell a reader to create (worked examples), and placeholders: none may exist in the repository.
EXAMPLES = {"efficientnet_tpu/model/blocks/plain_conv.py", "efficientnet_tpu/model/tiny.py", "efficientnet_tpu/data/npz.py", "configs/cifar100_sgd.yaml",
            "efficientnet_tpu/export/keras_archive.py", "path/to/my_study.yaml", "FILE.yaml",
            "configs/studies/NAME.yaml", "path.yaml"}
# Other projects' files, named with the project in the same paragraph (or comment block).
EXTERNAL = re.compile(r"tensorflow/tpu|google/automl|keras-team/|Keras Applications")
# The reference implementations' own files (tensorflow/tpu models/official/efficientnet, google/automl
# efficientnetv2, Keras' converter), cited by file and function in tables and docstrings: accepted in a page
# or module that names one of those projects anywhere.
REFERENCE_FILES = {"autoaugment.py", "datasets.py", "efficientnet_builder.py", "efficientnet_lite_builder.py",
                   "efficientnet_model.py", "efficientnet_weight_update_util.py", "effnetv2_configs.py",
                   "effnetv2_model.py", "eval_ckpt_main.py", "hparams.py", "main.py", "main_tf2.py",
                   "preprocessing.py", "utils.py"}


def _comments_and_docstrings(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        source = f.read()
    parts = [t.string for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type == tokenize.COMMENT]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            parts.append(ast.get_docstring(node, clean=False) or "")
    return "\n".join(parts)


def _prose() -> list[tuple[str, str]]:
    """(file, text) of every page and of every Python file's comments and docstrings."""
    pages = ["README.md", "BENCHMARKS.md", "STUDIES.md", *glob.glob("docs/*.md", root_dir=REPO)]
    code = [os.path.relpath(p, REPO) for pattern in ("efficientnet_tpu/**/*.py", "tests/*.py", "scripts/*.py")
            for p in glob.glob(os.path.join(REPO, pattern), recursive=True)]
    out = []
    for page in pages:
        if os.path.exists(os.path.join(REPO, page)):
            with open(os.path.join(REPO, page), encoding="utf-8") as f:
                out.append((page, f.read()))
    return out + [(path, _comments_and_docstrings(os.path.join(REPO, path))) for path in code]


def _written_names() -> set[str]:
    """File names that appear as string literals in the package: files a run writes or reads (config.yaml)."""
    names = set()
    for path in glob.glob(os.path.join(REPO, "efficientnet_tpu", "**", "*.py"), recursive=True):
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
        names |= {os.path.basename(node.value) for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str) and FILE_REFERENCE.fullmatch(
                      os.path.basename(node.value))}
    return names


def _repository_files() -> tuple[set[str], set[str]]:
    paths = set()
    for root, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("runs", "__pycache__")]
        paths |= {os.path.relpath(os.path.join(root, name), REPO) for name in files}
    return paths, {os.path.basename(p) for p in paths}


def unresolved_references(prose: list[tuple[str, str]]) -> list[str]:
    """``file: reference`` for each file name in ``prose`` that names no file of the repository."""
    paths, basenames = _repository_files()
    written = _written_names()
    missing = []
    for source, text in prose:
        here = os.path.dirname(source)
        for paragraph in re.split(r"\n\s*\n", text):
            for reference in FILE_REFERENCE.findall(paragraph):
                candidates = {os.path.normpath(os.path.join(base, reference))
                              for base in ("", here, "efficientnet_tpu", os.path.join("efficientnet_tpu", "model"))}
                if candidates & paths or (os.path.basename(reference) in basenames and "/" not in reference):
                    continue
                if reference in EXAMPLES or EXTERNAL.search(paragraph) or os.path.basename(reference) in written:
                    continue
                if os.path.basename(reference) in REFERENCE_FILES and EXTERNAL.search(text):
                    continue
                missing.append(f"{source}: {reference}")
    return sorted(set(missing))


def test_every_file_the_docs_and_the_code_comments_name_exists():
    """Docs pages, docstrings and comments: a named file is in the repository, written by the package, or an
    example or other project's file said to be one (once ten comments cited a design document outside it)."""
    assert unresolved_references(_prose()) == []
    paths, _ = _repository_files()
    assert not EXAMPLES & paths, "a worked example's file now exists: drop it from EXAMPLES"


def test_a_reference_to_a_missing_file_is_found():
    prose = [("efficientnet_tpu/model/specs.py", "# the reading of VARIANTS.md section 5"),
             ("docs/model.md", "see `docs/nowhere.md` and docs/model.md, `configs/digits_demo.yaml`, `specs.py`"),
             ("README.md", "a run writes model_dir/config.yaml; tensorflow/tpu efficientnet_builder.py")]
    assert unresolved_references(prose) == ["docs/model.md: docs/nowhere.md",
                                            "efficientnet_tpu/model/specs.py: VARIANTS.md"]
