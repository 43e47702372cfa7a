"""The package's import graph, read from the source: no cycle between its modules or its parts, no TensorFlow
in model/, no Keras under the architecture modules.

Every ``import`` counts, also those inside functions and under
``TYPE_CHECKING`` (a lazy import still ties two modules together). A part is
a subpackage (``training``, ``export``, ...) or a top-level module (``run``,
``train``, ...); ``import efficientnet_tpu`` and ``from efficientnet_tpu
import X`` count as importing ``model`` (the root re-exports the model API)
unless X is a part. In the module graph, importing ``a.b.c`` is an edge to
``a.b.c`` only: Python runs the parent packages' ``__init__`` first, but that
is no cycle of the code's own making. The command-line package ``cli`` sits
above every part; a documented ``python -m`` path elsewhere (``export/__main__.py``,
``data/make_tfrecords.py``, ...) is an entry shim into it, left out of the part
graph (a program, not a dependency), and only such shims may import ``cli``.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys

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


def is_entry_shim(path: str) -> bool:
    """A module outside cli/ that defines nothing and imports, of the package, only cli (and tf_startup)."""
    if path.split(os.sep)[0] == "cli":
        return False
    with open(os.path.join(PACKAGE, path), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    if any(isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) for node in ast.walk(tree)):
        return False
    ours = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
            and node.module.startswith("efficientnet_tpu")}
    ours |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
             if alias.name.startswith("efficientnet_tpu")}
    return bool(ours) and all(name.startswith("efficientnet_tpu.cli") or name == "efficientnet_tpu.tf_startup"
                              for name in ours)


def graph() -> dict[str, set[str]]:
    known = parts()
    edges: dict[str, set[str]] = {part: set() for part in known}
    for path, part in modules().items():
        if path == "__init__.py" or is_entry_shim(path):
            continue
        ours, _ = imported(path, known)
        edges[part] |= {other for other in ours if other != part}
    return edges


def module_files() -> dict[str, str]:
    """Dotted module name (a package by its own name) -> file."""
    out = {}
    for root, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                relative = os.path.relpath(os.path.join(root, name), os.path.dirname(PACKAGE))[:-3]
                dotted = relative.replace(os.sep, ".")
                out[dotted[: -len(".__init__")] if dotted.endswith(".__init__") else dotted] = os.path.join(root, name)
    return out


def module_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (``from P import m`` is m when m is a module, else P)."""
    files = module_files()

    def owner(name: str) -> str:
        while name not in files:
            name = name.rpartition(".")[0]
        return name

    edges: dict[str, set[str]] = {}
    for module, path in files.items():
        package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets |= {owner(a.name) for a in node.names if a.name.split(".")[0] == "efficientnet_tpu"}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    kept = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(kept + ([node.module] if node.module else []))
                if base.split(".")[0] != "efficientnet_tpu":
                    continue
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.add(full if full in files else owner(base))
        edges[module] = targets - {module}
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


def test_only_entry_shims_import_the_command_line_package():
    known = parts()
    importers = sorted(path for path, part in modules().items() if part != "cli" and "cli" in imported(path, known)[0])
    assert importers and all(is_entry_shim(path) for path in importers), \
        [path for path in importers if not is_entry_shim(path)]


def test_no_import_cycle_between_the_package_parts():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_import_cycle_between_modules():
    """Finer than the parts: model/specs.py and the blocks (now model/blocks/base.py) once needed each other."""
    cycle = find_cycle(module_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_module_graph_sees_a_cycle_written_into_the_package(tmp_path, monkeypatch):
    package = tmp_path / "efficientnet_tpu"
    (package / "model").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "model" / "__init__.py").write_text("")
    (package / "model" / "a.py").write_text("from efficientnet_tpu.model import b\n")
    (package / "model" / "b.py").write_text("def f():\n    from efficientnet_tpu.model.a import x\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", str(package))
    assert find_cycle(module_graph()) == ["efficientnet_tpu.model.a", "efficientnet_tpu.model.b",
                                          "efficientnet_tpu.model.a"]


# The architecture as data: specs, the block-type declarations, the variant registry and the families
# written as stage tables. They describe, resolve and validate networks without Keras.
KERAS_FREE = ("efficientnet_tpu.model", "efficientnet_tpu.model.block_types", "efficientnet_tpu.model.specs", "efficientnet_tpu.model.registry",
              "efficientnet_tpu.model.scaling", "efficientnet_tpu.model.overrides",
              "efficientnet_tpu.model.stage_overrides", "efficientnet_tpu.model.family_builders",
              "efficientnet_tpu.model.efficientnet", "efficientnet_tpu.model.efficientnet_studies",
              "efficientnet_tpu.model.v2", "efficientnet_tpu.model.lite", "efficientnet_tpu.model.baselines",
              "efficientnet_tpu.model.baselines.specs")


def _closure(start: str, edges: dict[str, set[str]]) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo += sorted(edges.get(module, ()))
    return seen


@pytest.mark.parametrize("module", KERAS_FREE)
def test_the_architecture_modules_import_no_keras_directly_or_through_what_they_import(module):
    edges, files = module_graph(), module_files()
    for reached in sorted(_closure(module, edges)):
        _, others = imported(os.path.relpath(files[reached], PACKAGE), parts())
        assert not {"keras", "tensorflow"} & others, f"{module} reaches {reached}, which imports {others}"


def test_every_variant_resolves_without_loading_keras():
    """At run time too, with the model package's __init__ left out: each family module loads on its own."""
    script = (
        "import sys, types\n"
        "package = types.ModuleType('efficientnet_tpu.model')\n"
        f"package.__path__ = [{os.path.join(PACKAGE, 'model')!r}]\n"
        "sys.modules['efficientnet_tpu.model'] = package\n"
        "from efficientnet_tpu.model import efficientnet, efficientnet_studies, lite, registry as variants, v2\n"
        "from efficientnet_tpu.model.baselines import specs\n"
        "from efficientnet_tpu.model.specs import resolve_blocks\n"
        "names = variants.list_variants()\n"
        "for name in names:\n"
        "    resolve_blocks(variants.get_spec(name))\n"
        "resolve_blocks(variants.get_spec('b0', phi=1, stage_blocks={3: 'meconv'}, remove_stages=[2]))\n"
        "loaded = sorted({'keras', 'tensorflow', 'jax'} & set(sys.modules))\n"
        "assert not loaded, loaded\n"
        "assert {'b0', 'b7', 'b0_compact', 'lite0', 'lite4', 'v2_s', 'resnet152', 'baseline_convnet'} <= set(names), names\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=os.path.dirname(PACKAGE)))
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_model_package_loads_keras_only_for_its_keras_backed_names():
    """The real package this time: its __init__ loads the specs and families; the builder waits for build_model."""
    script = (
        "import sys\n"
        "import efficientnet_tpu.model as model\n"
        "from efficientnet_tpu.model import specs, registry\n"
        "model.resolve_blocks(model.get_spec('b0_meconv', phi=-1))\n"
        "assert 'build_model' in dir(model)\n"
        "loaded = sorted({'keras', 'tensorflow', 'jax'} & set(sys.modules))\n"
        "assert not loaded, loaded\n"
        "from efficientnet_tpu.model import build_model\n"
        "assert 'keras' in sys.modules and build_model is model.build_model\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=os.path.dirname(PACKAGE)))
    assert done.returncode == 0, done.stderr[-2000:]


# Each registry and the module that defines it; only that module's register_* function writes into it.
REGISTRIES = {"BLOCK_TYPES": "efficientnet_tpu.model.block_types", "BLOCK_LAYERS": "efficientnet_tpu.model.blocks.base",
              "SPEC_OVERRIDE_HANDLERS": "efficientnet_tpu.model.overrides",
              "_REGISTRY": "efficientnet_tpu.model.registry", "FAMILY_BUILDERS": "efficientnet_tpu.model.family_builders"}


def _writes(tree: ast.AST) -> set[str]:
    """Names of registries a module writes: ``R[k] = v``, ``del R[k]``, ``R.update(...)`` and the like."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, (ast.Store, ast.Del)):
            target = node.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr in ("update", "setdefault", "pop", "clear", "__setitem__"):
            target = node.func.value
        else:
            continue
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
        if name in REGISTRIES:
            out.add(name)
    return out


def test_every_registry_is_filled_only_by_the_register_call_of_its_own_module():
    for module, path in module_files().items():
        with open(path, encoding="utf-8") as f:
            written = _writes(ast.parse(f.read()))
        assert all(REGISTRIES[name] == module for name in written), f"{module} writes {sorted(written)}"
    assert _writes(ast.parse("from m import FAMILY_BUILDERS\nFAMILY_BUILDERS.update(a=1)\n")) == {"FAMILY_BUILDERS"}


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
    script = ("from absl import flags\n"
              "import efficientnet_tpu.train, efficientnet_tpu.summary, efficientnet_tpu.cli.export\n"
              "ours = {'config', 'variant', 'phi', 'num_classes', 'model_dir', 'export_dir', 'format', 'all'}\n"
              "assert not ours & set(flags.FLAGS), sorted(ours & set(flags.FLAGS))\n"
              "efficientnet_tpu.train.define_flags()\nassert flags.FLAGS['phi'].flag_type() == 'string'\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
                                   PYTHONPATH=os.path.dirname(PACKAGE) + os.pathsep + os.environ.get("PYTHONPATH", "")))
    assert done.returncode == 0, done.stderr[-2000:]
