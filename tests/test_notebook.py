"""The Colab notebook runs top to bottom on a CPU (nbclient, a real Jupyter kernel) with SMOKE = True:
TFDS mock data instead of the download, two training steps, then eval, export and serve_image_bytes."""

from __future__ import annotations

import json
import os

import nbclient  # the test extra installs nbclient, nbformat and ipykernel (the kernel)
import nbformat
import pytest

NOTEBOOK = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "notebooks",
                        "colab_quickstart.ipynb")


def with_parameters(notebook, **values):
    """Papermill's convention: a cell after the one tagged `parameters` overrides its values."""
    index = next(i for i, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", []))
    source = "\n".join(f"{name} = {value!r}" for name, value in values.items())
    notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]}))
    return notebook


@pytest.mark.slow
def test_colab_notebook_runs_top_to_bottom_on_cpu(tmp_path):
    notebook = with_parameters(nbformat.read(NOTEBOOK, as_version=4), SMOKE=True,
                               MODEL_DIR=str(tmp_path / "run"))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, with the cell and its traceback, if any cell fails
    text = "\n".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                     for output in cell.get("outputs", []))
    assert "| predicted:" in text  # the serve_image_bytes cell classified its image
    assert list((tmp_path / "run" / "export").glob("**/saved_model.pb"))  # export_dir[/version]/saved_model.pb
    results = json.loads((tmp_path / "run" / "eval_results.json").read_text())
    assert results["step"] == 2 and results["num_examples"] == 16  # two steps, every mock test image once


def install_plan_of_the_notebook():
    """The install cell's ``install_plan`` and constants, without running the cell's pip commands."""
    import ast

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    cell = next(c for c in notebook.cells if c.cell_type == "code" and "def install_plan" in c.source)
    tree = ast.parse(cell.source)
    kept = [node for node in tree.body if isinstance(node, (ast.Import, ast.FunctionDef))
            or (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id.isupper())]
    namespace: dict = {}
    exec(compile(ast.Module(body=kept, type_ignores=[]), NOTEBOOK, "exec"), namespace)  # noqa: S102
    return namespace


@pytest.mark.parametrize("tpu, tensorflows, remove, extra", [
    (True, {}, [], "[tpu]"),                                     # today's Colab TPU runtime: no TensorFlow
    (True, {"tensorflow": "2.19.0"}, ["tensorflow"], "[tpu]"),   # a CPU build in the way is removed first
    (True, {"tensorflow-tpu": "2.20.0"}, [], "[tpu]"),           # the TPU build stays (pip keeps it)
    (False, {"tensorflow": "2.21.0"}, [], ""),                   # a CPU/GPU runtime's own TensorFlow is kept
    (False, {"tensorflow": "2.19.0"}, [], "[cpu]"),              # too old: upgraded in place, same distribution
    (False, {}, [], "[cpu]"),
    (False, {"tensorflow-cpu": "2.21.0"}, ["tensorflow-cpu"], "[cpu]"),
])
def test_the_install_cell_installs_one_tensorflow_of_the_right_kind(tpu, tensorflows, remove, extra):
    from packaging.requirements import Requirement

    namespace = install_plan_of_the_notebook()
    removed, install = namespace["install_plan"](tpu, tensorflows, "git+https://example.org/efficientnet_tpu.git")
    assert removed == remove
    requirement = Requirement(install[0])  # a valid pip requirement: name[extras] @ url
    assert requirement.name == "efficientnet_tpu" and requirement.url.startswith("git+https://")
    assert requirement.extras == set(extra.strip("[]").split(",")) - {""}
    if tpu:
        assert install[1:] == ["--find-links", "https://storage.googleapis.com/libtpu-tf-releases/index.html"]
    else:
        assert install[1:] == []
