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
