"""docs/extending.md's numbered lists of files touched, held to the code.

Each "Add a ..." section says how many steps (files) an extension takes. The
counts are pinned here, and where the code can show the claim, it is checked
too: a block type, a variant family, a dataset, an export format or a study
that is named in more places than the section lists fails this file, so the
page cannot silently drift from the layout.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import pathlib
import re

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = REPO / "efficientnet_tpu"
PAGE = REPO / "docs" / "extending.md"

# Section title -> the number of steps its numbered list gives.
STEPS = {
    "Add a block type": 3,
    "Add a variant family": 4,
    "Add a dataset": 6,
    "Add a data option": 5,
    "Add a training recipe": 1,
    "Add a training setting": 4,
    "Add an export format": 4,
    "Add a study": 5,
    "Add a command": 4,
    "Add a loop action": 4,
}

_STEP = re.compile(r"^(?:\*\*)?(\d+)\.\s")


def sections() -> dict[str, list[int]]:
    """Each '## Add ...' section's step numbers, in order (fenced code blocks skipped)."""
    found: dict[str, list[int]] = {}
    title, fenced = None, False
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            continue
        if line.startswith("## "):
            title = line[3:].strip()
            found[title] = []
        elif title is not None and (match := _STEP.match(line)):
            found[title].append(int(match.group(1)))
    return found


def test_every_section_is_a_numbered_list_of_the_pinned_length():
    found = sections()
    assert set(found) == set(STEPS), "sections added or removed: update STEPS and the checks below"
    for title, numbers in found.items():
        assert numbers == list(range(1, STEPS[title] + 1)), f"{title!r}: steps {numbers}, pinned {STEPS[title]}"


def test_the_counter_reads_a_planted_extra_step(tmp_path, monkeypatch):
    page = tmp_path / "extending.md"
    page.write_text(PAGE.read_text(encoding="utf-8").replace(
        "## Add a study\n", "## Add a study\n\n0. **a step the pin does not know**\n", 1), encoding="utf-8")
    monkeypatch.setattr(__import__(__name__), "PAGE", page)
    assert sections()["Add a study"][0] == 0


@functools.cache
def _strings(path: pathlib.Path) -> frozenset[str]:
    """The string constants a module's code uses (docstrings left out: they explain, they do not name)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)):
            docstrings.add(id(body[0].value))
    return frozenset(node.value for node in ast.walk(tree)
                     if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings)


def naming(name: str, under: str = "") -> set[str]:
    """Package modules (paths relative to efficientnet_tpu/) whose code spells ``name`` as a whole string."""
    root = PACKAGE / under if under else PACKAGE
    return {str(path.relative_to(PACKAGE)) for path in sorted(root.rglob("*.py")) if name in _strings(path)}


def test_a_block_type_is_named_by_its_declaration_its_one_file_and_the_tables_using_it():
    """'Add a block type': a declaration line, one file in model/blocks/, one import; nothing else in the
    package names a block type except the stage tables (and stage-override examples) that use it."""
    from efficientnet_tpu.model import block_types, registry

    families = {f"model/{module.replace('efficientnet_tpu.model.', '').replace('.', '/')}.py"
                for module in {variant.make.__module__ for variant in registry._REGISTRY.values()}}
    families |= {"model/efficientnet_studies.py"}  # the study presets: tables over B0's, registered by efficientnet
    blocks = sorted((PACKAGE / "model" / "blocks").glob("*.py"))
    for name in block_types.block_names():
        files = naming(name)
        own = {f for f in files if f.startswith("model/blocks/")}
        assert own == {f"model/blocks/{name}.py"}, f"{name}: its layer file(s) {own}"
        assert "model/block_types.py" in files
        others = files - own - {"model/block_types.py"} - families
        assert not others, f"block type {name!r} also named in {sorted(others)}"
    registering = [path.name for path in blocks
                   if re.search(r"^@register_block\(", path.read_text(encoding="utf-8"), re.MULTILINE)]
    assert sorted(registering) == sorted(f"{name}.py" for name in block_types.block_names())
    init = (PACKAGE / "model" / "blocks" / "__init__.py").read_text(encoding="utf-8")
    for name in block_types.block_names():
        assert f"efficientnet_tpu.model.blocks.{name} import" in init, f"blocks/__init__.py does not import {name}"


def test_a_variant_family_is_one_module_and_its_import():
    """'Add a variant family': every network's name is written in one family module of model/ (besides
    the b0 default and Keras Applications' weight table), and model/__init__ imports every family."""
    from efficientnet_tpu.model import registry

    extras = {"model/registry.py", "model/builder.py", "model/weights.py"}
    init = (PACKAGE / "model" / "__init__.py").read_text(encoding="utf-8")
    for name in registry.list_variants():
        files = naming(name, "model") - extras
        assert len(files) == 1, f"variant {name!r} is written in {sorted(files)}"
        module = "efficientnet_tpu." + files.pop()[:-3].replace("/", ".")
        short = module.rsplit(".", 1)[-1]
        assert re.search(rf"\bimport\b.*\b{short}\b", init), f"model/__init__.py does not import {module}"


def test_a_dataset_is_named_in_its_source_the_choices_and_the_registry():
    """'Add a dataset': a source module, its name in data/choices.py, its branch in data/registry.py
    (data/native.py too for a fixed small size); no other module of data/ names it."""
    from efficientnet_tpu.data import choices

    shared = {"data/choices.py", "data/registry.py", "data/native.py"}
    for name in choices.DATASET_NAMES:
        files = naming(name, "data")
        assert {"data/choices.py", "data/registry.py"} <= files, name
        assert len(files - shared) <= 1, f"dataset {name!r} is named in {sorted(files - shared)}"


def test_a_data_option_reaches_the_pipeline_without_run_py():
    """'Add a data option': a TrainConfig field and a DataOptions field of the same name; run.py's input
    functions copy them by name, so they name only what a progressive stage changes."""
    from efficientnet_tpu.data.options import DataOptions
    from efficientnet_tpu.training import config as config_lib

    tree = ast.parse((PACKAGE / "run.py").read_text(encoding="utf-8"))
    plumbing = "\n".join(ast.unparse(node) for node in tree.body
                         if isinstance(node, ast.FunctionDef) and node.name in ("input_fns", "stage_controller"))
    assert "DataOptions.from_config" in plumbing or "from_config" in plumbing
    stage = {"mixup_alpha", "cutmix_alpha", "randaugment_magnitude", "augment", "seed"}
    stage |= {"deterministic"}  # with the seed, it decides where a resumed stream restarts (replay or reseed)
    for field in dataclasses.fields(DataOptions):
        if field.name in ("dtype", "resize_method"):
            continue  # not settings: the strategy's and the variant's
        assert field.name in config_lib.FIELDS, f"DataOptions.{field.name} has no TrainConfig field"
        if field.name not in stage:
            assert not re.search(rf"\b{field.name}\b", plumbing), f"run.py passes the data option {field.name} by hand"


def test_a_training_setting_needs_no_command_line_code():
    """'Add a training setting': the trainer's flags come from the fields; cli/train.py names none."""
    from efficientnet_tpu.training import config as config_lib

    source = (PACKAGE / "cli" / "train.py").read_text(encoding="utf-8")
    named = sorted(name for name in config_lib.FIELDS if re.search(rf"FLAGS\.{name}\b|FLAGS\[.{name}.\]", source))
    assert named == [], f"cli/train.py handles fields by name: {named}"


def test_an_export_format_is_named_in_the_config_and_export_run_only():
    """'Add an export format': the writer module, its entry in EXPORT_FORMATS (training/config.py) and
    its branch in export/from_run.py; the CLIs and run.py read the table (from_run.described)."""
    from efficientnet_tpu.training.config import EXPORT_FORMATS

    allowed = {"training/config.py", "export/from_run.py", "export/__init__.py", "cli/export.py"}
    for name in EXPORT_FORMATS:
        files = naming(name)
        assert {"training/config.py", "export/from_run.py"} <= files or name == "saved_model", (name, files)
        assert files <= allowed, f"export format {name!r} is also named in {sorted(files - allowed)}"


@pytest.mark.parametrize("spec", sorted((REPO / "configs" / "studies").glob("*.yaml")), ids=lambda p: p.stem)
def test_a_study_is_one_yaml_file(spec):
    """'Add a study': the spec is found by listing configs/studies; no module names a shipped study."""
    assert naming(spec.stem) - {"model/efficientnet_studies.py", "model/block_types.py", "model/blocks/meconv.py"
                                } == set(), f"study {spec.stem!r} is named in the code"


def test_a_loop_action_is_added_without_editing_the_loop():
    """'Add a loop action': the built-in actions are listed in actions.default_actions alone; the loop
    (training/loop.py) imports only the protocol, the list and Evaluate (whose result train returns)."""
    from efficientnet_tpu.training import actions

    tree = ast.parse((PACKAGE / "training" / "loop.py").read_text(encoding="utf-8"))
    imported = {alias.name for node in tree.body if isinstance(node, ast.ImportFrom)
                and node.module == "efficientnet_tpu.training.actions" for alias in node.names}
    assert imported <= {"Action", "Evaluate", "default_actions"}, imported
    built_ins = {name for name, value in vars(actions).items()
                 if isinstance(value, type) and issubclass(value, actions.Action) and value is not actions.Action
                 and value.__module__ == actions.__name__}
    listing = ast.unparse(next(node for node in ast.parse(pathlib.Path(actions.__file__).read_text(encoding="utf-8")).body
                               if isinstance(node, ast.FunctionDef) and node.name == "default_actions"))
    assert built_ins and all(re.search(rf"\b{name}\b", listing) for name in built_ins), built_ins
