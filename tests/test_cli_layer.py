"""One command-line layer: every CLI module in efficientnet_tpu/cli/ parses through cli/common.py (issue 19).

Read from the source: no argparse and no second ``UsageError`` anywhere in
the package, no absl ``app.run`` or private ``FlagValues`` outside the shared
module, and every command module imports it. The checks run on a planted bad
module too, so they can fail.
"""

from __future__ import annotations

import ast
import os

import pytest
from absl import flags

from efficientnet_tpu.cli import common

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "efficientnet_tpu")
CLI = os.path.join(PACKAGE, "cli")
SHARED = os.path.join(CLI, "common.py")


def sources(root: str) -> dict[str, ast.AST]:
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8") as f:
                    out[os.path.relpath(path, PACKAGE)] = ast.parse(f.read())
    return out


def _imports(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def problems(path: str, tree: ast.AST) -> list[str]:
    """What breaks the one-layer rule in this module (the shared module itself may parse)."""
    found = []
    if {"argparse", "optparse", "click"} & {name.split(".")[0] for name in _imports(tree)}:
        found.append(f"{path}: a second flag style (argparse, optparse or click); use absl through cli/common.py")
    shared = path == os.path.relpath(SHARED, PACKAGE)
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name.endswith("UsageError") and not shared:
            found.append(f"{path}: a second {node.name}; raise efficientnet_tpu.cli.common.UsageError")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and not shared:
            owner = getattr(node.func.value, "id", None)
            if (owner, node.func.attr) in (("app", "run"), ("flags", "FlagValues")):
                found.append(f"{path}: {owner}.{node.func.attr}() outside cli/common.py")
    return found


def command_modules() -> dict[str, ast.AST]:
    return {path: tree for path, tree in sources(CLI).items()
            if not path.endswith("__init__.py") and path != os.path.relpath(SHARED, PACKAGE)}


def test_the_package_has_one_flag_style_and_one_usage_error():
    found = [line for path, tree in sources(PACKAGE).items() for line in problems(path, tree)]
    assert found == []


@pytest.mark.parametrize("path", sorted(command_modules()))
def test_every_command_module_parses_through_the_shared_layer(path):
    tree = command_modules()[path]
    assert "efficientnet_tpu.cli.common" in _imports(tree), f"{path} does not use efficientnet_tpu.cli.common"
    assert any(isinstance(node, ast.FunctionDef) and node.name == "main" for node in tree.body), \
        f"{path} has no main()"


def test_the_checks_find_a_planted_second_style():
    planted = ast.parse("import argparse\nfrom absl import app, flags\n"
                        "class UsageError(Exception):\n    pass\n"
                        "def main():\n    values = flags.FlagValues()\n    app.run(main)\n")
    found = problems(os.path.join("cli", "planted.py"), planted)
    assert len(found) == 4 and "argparse" in found[0] and "UsageError" in found[1], found
    assert "efficientnet_tpu.cli.common" not in _imports(planted)


def test_a_flag_of_another_command_is_refused_not_shared():
    flags.DEFINE_string("cli_layer_probe", None, "defined here, as by another command")
    try:
        assert common.to_define(__name__, ["cli_layer_probe"]) is False  # this module's own: defined already
        with pytest.raises(RuntimeError, match="--cli_layer_probe already defined by another command-line tool"):
            common.to_define("efficientnet_tpu.cli.other", ["cli_layer_probe"])
        assert common.to_define("efficientnet_tpu.cli.other", ["cli_layer_probe_unused"]) is True
    finally:
        delattr(flags.FLAGS, "cli_layer_probe")
