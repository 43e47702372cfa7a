"""The package's import graph, read from the source: no cycle between its parts, no TensorFlow in model/.

Every ``import`` counts, also those inside functions (a lazy import still
ties two packages together). A part is a subpackage (``training``,
``export``, ...) or a top-level module (``run``, ``train``, ...);
``import efficientnet_tpu`` and ``from efficientnet_tpu import X`` count as
importing ``model`` (the root re-exports the model API) unless X is a part.
"""

from __future__ import annotations

import ast
import os

import pytest

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "efficientnet_tpu")


def parts() -> set[str]:
    names = set()
    for entry in os.listdir(PACKAGE):
        path = os.path.join(PACKAGE, entry)
        if os.path.isdir(path) and os.path.exists(os.path.join(path, "__init__.py")):
            names.add(entry)
        elif entry.endswith(".py") and entry != "__init__.py":
            names.add(entry[:-3])
    return names


def modules() -> dict[str, str]:
    """Module path (relative, with slashes) -> part."""
    out = {}
    for root, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                relative = os.path.relpath(os.path.join(root, name), PACKAGE)
                first = relative.split(os.sep)[0]
                out[relative] = first[:-3] if first.endswith(".py") else first
    return out


def imported(path: str, known: set[str]) -> tuple[set[str], set[str]]:
    """(parts of efficientnet_tpu this file imports, top-level names of other packages)."""
    with open(os.path.join(PACKAGE, path), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    ours, others = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [(node.module, [alias.name for alias in node.names])]
        else:
            continue
        for module, members in names:
            top, _, rest = module.partition(".")
            if top != "efficientnet_tpu":
                others.add(top)
            elif rest:
                ours.add(rest.split(".")[0])
            else:  # the root: a part by name, else the model API it re-exports
                for member in members or [None]:
                    ours.add(member if member in known else "model")
    return ours, others


def graph() -> dict[str, set[str]]:
    known = parts()
    edges: dict[str, set[str]] = {part: set() for part in known}
    for path, part in modules().items():
        if path == "__init__.py":
            continue
        ours, _ = imported(path, known)
        edges[part] |= {other for other in ours if other != part}
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycle_between_the_package_parts():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_orchestration_sits_above_training_and_export():
    edges = graph()
    assert "export" not in edges["training"] and "run" not in edges["training"]
    assert "run" not in edges["export"] and {"training", "export"} <= edges["run"]


@pytest.mark.parametrize("path", sorted(p for p, part in modules().items() if part == "model"))
def test_model_uses_keras_not_tensorflow(path):
    _, others = imported(path, parts())
    assert "tensorflow" not in others, f"efficientnet_tpu/{path} imports tensorflow"


def test_importing_the_command_line_tools_defines_no_flags():
    """Each CLI defines its absl flags on its own main path: one tool's --phi never becomes another's."""
    import subprocess
    import sys

    script = ("from absl import flags\n"
              "import efficientnet_tpu.train, efficientnet_tpu.summary, efficientnet_tpu.export.cli\n"
              "ours = {'config', 'variant', 'phi', 'num_classes', 'model_dir', 'export_dir', 'format', 'all'}\n"
              "assert not ours & set(flags.FLAGS), sorted(ours & set(flags.FLAGS))\n"
              "efficientnet_tpu.train.define_flags()\nassert flags.FLAGS['phi'].flag_type() == 'string'\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
                                   PYTHONPATH=os.path.dirname(PACKAGE) + os.pathsep + os.environ.get("PYTHONPATH", "")))
    assert done.returncode == 0, done.stderr[-2000:]
