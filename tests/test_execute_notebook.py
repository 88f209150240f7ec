"""docs/results/execute_notebook.py: a notebook executed in place for committing."""

import os
import sys

import pytest

pytestmark = [pytest.mark.notebooks, pytest.mark.slow]

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "docs", "results"))
try:
    import execute_notebook
finally:
    sys.path.pop(0)


def test_the_outputs_come_from_the_parameters_and_the_cell_keeps_its_defaults(tmp_path):
    import nbformat

    path = tmp_path / "report.ipynb"
    notebook = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell('WHERE = "defaults"  # a reader starts here')
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [parameters, nbformat.v4.new_code_cell("print('rendered from', WHERE)")]
    nbformat.write(notebook, str(path))
    cwd = os.getcwd()
    try:
        assert execute_notebook.main([str(path), 'WHERE="the campaign"']) == 0
    finally:
        os.chdir(cwd)  # main runs the notebook from its own folder
    executed = nbformat.read(str(path), as_version=4)
    cells = [c for c in executed.cells if c.cell_type == "code"]
    assert cells[0].source == 'WHERE = "defaults"  # a reader starts here'
    assert any("rendered from the campaign" in o.get("text", "") for o in cells[-1].outputs)
    assert [p.name for p in tmp_path.iterdir()] == ["report.ipynb"]  # no temporary left
