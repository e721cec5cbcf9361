"""The tutorial notebooks: stored lean (checked outputs only), executed headless by papermill,
failures named by notebook and cell.  nbval itself runs as ``pytest --nbval-lax notebooks/``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("papermill")

from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))

from nbtools import (  # noqa: E402
    RECORD_BEGIN,
    NotebookError,
    declared_parameters,
    is_checked,
    list_notebooks,
    notebook_text,
    outputs_record,
    record_outputs,
    run_notebooks,
    strip_notebook,
)

NOTEBOOKS = REPO / "notebooks"


def stored_notebooks() -> list[Path]:
    return list_notebooks(NOTEBOOKS)


def write_notebook(path: Path, cells: list) -> Path:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


def parameters_cell(source: str):
    cell = new_code_cell(source)
    cell.metadata["tags"] = ["parameters"]
    return cell


# ---- the stored notebooks --------------------------------------------------------------------


def test_series_is_numbered_and_present():
    names = [p.name for p in stored_notebooks()]
    assert "03_multigrid_schedule.ipynb" in names and "04_dynamic_learning_rate.ipynb" in names
    assert names == sorted(names)


@pytest.mark.parametrize("path", stored_notebooks(), ids=lambda p: p.name)
def test_stored_notebook_is_lean(path: Path):
    """What git holds is exactly what tools/strip_notebooks.py writes: the outputs a reader should
    see, no widgets, no progress bars, text only in checked cells."""
    text = path.read_text(encoding="utf-8")
    nb = nbformat.reads(text, as_version=4)
    assert notebook_text(strip_notebook(nb)) == text, f"run: python tools/strip_notebooks.py {path}"
    checked = [c for c in nb.cells if is_checked(c)]
    assert checked, "every notebook compares at least one deterministic output"
    for cell in checked:  # nbval compares against these: they must be there
        assert cell.outputs and cell.execution_count is not None, cell.source
    assert declared_parameters(path), "a parameters cell with at least one parameter"
    assert len(text) < 1_500_000, "figures at a modest resolution: the series stays under 5 MB"


def headings(nb) -> list[str]:
    """The markdown headings of a notebook, in order, without their ``#`` marks."""
    return [line.lstrip("#").strip() for cell in nb.cells if cell.cell_type == "markdown"
            for line in cell.source.splitlines() if line.startswith("#")]


@pytest.mark.parametrize("path", stored_notebooks(), ids=lambda p: p.name)
def test_every_notebook_ends_with_takeaways_and_exercises(path: Path):
    """d2l's and fastbook's habit: a summary tied to the notebook's own numbers, then exercises. The
    takeaways are printed by a code cell (numbers from this execution, never typed), and the
    notebook's last two headings are "Takeaways" and "Exercises", in that order."""
    nb = nbformat.read(str(path), as_version=4)
    assert headings(nb)[-2:] == ["Takeaways", "Exercises"], headings(nb)[-3:]
    start = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and "# Takeaways" in c.source)
    end = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and "# Exercises" in c.source)
    between = [c for c in nb.cells[start + 1:end] if c.cell_type == "code"]
    assert between and any("print(" in c.source for c in between), "the takeaways are computed and printed"
    exercises = nb.cells[end].source
    items = [line for line in exercises.splitlines() if line[:2] in {f"{k}." for k in range(1, 10)}]
    assert 2 <= len(items) <= 3, f"2-3 exercises, found {len(items)}"


BUILT_BY_HAND = {"03_multigrid_schedule.ipynb": "multigrid(", "04_dynamic_learning_rate.ipynb": "check.lr(",
                 "05_large_minibatches.ipynb": "linear_scaling(", "06_training_on_sample_clips.ipynb": "Trainer("}


@pytest.mark.parametrize("name", sorted(BUILT_BY_HAND))
def test_the_algorithm_is_built_then_checked_against_mgvsr(name: str):
    """Notebooks 3-6 write the idea they teach in plain Python (a function defined in a cell: the
    multigrid plan, Eq. 1, the linear scaling rule and warmup, the training loop), then assert it
    equal to mgvsr's implementation on the same inputs."""
    nb = nbformat.read(str(NOTEBOOKS / name), as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    defined = [line for line in code.splitlines() if line.startswith("def ")]
    assert defined, f"{name} defines no function"
    assert "assert " in code and BUILT_BY_HAND[name] in code, f"{name} does not check its function against mgvsr's"


def test_the_series_stays_under_5_mb():
    assert sum(p.stat().st_size for p in stored_notebooks()) < 5_000_000


# ---- strip_notebook ---------------------------------------------------------------------------


def executed_example():
    checked = new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(1)\n2", execution_count=7)
    checked.outputs = [new_output("stream", name="stdout", text="1\n"),
                       new_output("execute_result", data={"text/plain": "2"}, execution_count=7)]
    checked.metadata.update({"tags": ["x"], "execution": {"iopub.execute_input": "2024"}, "papermill": {}})
    figure = new_code_cell("fig", execution_count=8)
    figure.outputs = [new_output("display_data", data={"image/png": "iVBOR", "text/plain": "<Figure>"},
                                 metadata={"image/png": {"width": 300}, "needs_background": "light"})]
    training = new_code_cell("train()", execution_count=9)
    training.outputs = [new_output("stream", name="stderr", text="training: 40%|####  |\r"),
                        new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "a"},
                                                         "text/plain": "HBox(children=...)"}),
                        new_output("stream", name="stdout", text="PSNR 25.61 dB\n")]
    quiet = new_code_cell("x = 1", execution_count=10)
    injected = new_code_cell('scale = "smoke"', execution_count=1)
    injected.metadata["tags"] = ["injected-parameters"]
    nb = new_notebook(cells=[new_markdown_cell("# title"), parameters_cell('scale = "paper"'), injected,
                             checked, figure, training, quiet])
    nb.metadata.update({"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                        "language_info": {"name": "python", "version": "3.11.7"},
                        "papermill": {"duration": 3.2}, "widgets": {"state": {}}})
    return nb


def test_strip_keeps_what_a_reader_sees_and_drops_widgets_and_progress_bars():
    nb = strip_notebook(executed_example())
    assert [c.cell_type for c in nb.cells] == ["markdown", "code", "code", "code", "code", "code"]  # injected cell gone
    params, checked, figure, training, quiet = nb.cells[1:]
    assert params.metadata == {"tags": ["parameters"]} and params.execution_count is None
    assert checked.execution_count == 2  # second code cell of the stored notebook
    assert checked.metadata == {"tags": ["x"]}
    assert [o.output_type for o in checked.outputs] == ["stream", "execute_result"]
    assert checked.outputs[1].execution_count == 2 and checked.outputs[1].data == {"text/plain": "2"}
    assert figure.execution_count == 3 and figure.outputs[0].data["image/png"] == "iVBOR"
    assert figure.outputs[0].metadata == {"image/png": {"width": 300}}
    assert [(o.output_type, o.get("text")) for o in training.outputs] == [("stream", "PSNR 25.61 dB\n")]
    assert quiet.outputs == [] and quiet.execution_count is None
    assert nb.metadata == {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                           "language_info": {"name": "python"}}
    nbformat.validate(nb)
    assert strip_notebook(nb) == nb  # idempotent


def test_strip_refuses_errors_anywhere_and_images_in_checked_cells():
    nb = executed_example()
    nb.cells[3].outputs.append(new_output("error", ename="ValueError", evalue="bad", traceback=[]))
    with pytest.raises(NotebookError, match="ValueError: bad"):
        strip_notebook(nb)
    nb = executed_example()
    nb.cells[4].outputs.append(new_output("error", ename="KeyError", evalue="x", traceback=[]))
    with pytest.raises(NotebookError, match="cell 4 raised KeyError"):
        strip_notebook(nb)
    nb = executed_example()
    nb.cells[3].outputs.append(new_output("display_data", data={"image/png": "iVBOR", "text/plain": "<Figure>"}))
    with pytest.raises(NotebookError, match="image/png"):
        strip_notebook(nb)


def test_the_outputs_record_says_when_where_and_how_long():
    record = outputs_record({"01_overview.ipynb": 90.0, "02_cost_of_shapes.ipynb": 210.0},
                            when="2026-11-30 12:00 UTC", machine="a 2-core CPU")
    assert "made on 2026-11-30 12:00 UTC" in record and "on: a 2-core CPU" in record
    assert "| 01_overview.ipynb | 1.5 | - |" in record and "| all | 5.0 |" in record
    given = outputs_record({"07_reproducing_the_tables.ipynb": 6.0}, when="now", machine="here",
                           parameters={"07_reproducing_the_tables.ipynb": {"train_missing": False}})
    assert "| 07_reproducing_the_tables.ipynb | 0.1 | `train_missing = False` |" in given
    assert "tutorial cache" not in given
    assert "was empty before" in outputs_record({}, when="now", machine="here", cached_runs=0)
    assert "held 8 finished runs" in outputs_record({}, when="now", machine="here", cached_runs=8)
    readme = "# notebooks\n\ntext\n"
    once = record_outputs(readme, record)
    assert once.startswith(readme) and once.count(RECORD_BEGIN) == 1
    again = record_outputs(once + "after\n", record.replace("1.5", "1.6"))
    assert again.count(RECORD_BEGIN) == 1 and "| 01_overview.ipynb | 1.6 |" in again and again.endswith("after\n")


def test_is_checked_by_marker_or_tag():
    assert is_checked(new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(1)"))
    assert not is_checked(new_code_cell("print('# NBVAL_CHECK_OUTPUT')"))
    tagged = new_code_cell("print(1)")
    tagged.metadata["tags"] = ["nbval-check-output"]
    assert is_checked(tagged)
    assert not is_checked(new_markdown_cell("# NBVAL_CHECK_OUTPUT"))


def test_declared_parameters_needs_a_parameters_cell(tmp_path: Path):
    path = write_notebook(tmp_path / "01_x.ipynb", [parameters_cell('scale = "smoke"\noutput_dir = ""')])
    assert declared_parameters(path) == {"scale": '"smoke"', "output_dir": '""'}
    bare = write_notebook(tmp_path / "02_y.ipynb", [new_code_cell("x = 1")])
    with pytest.raises(NotebookError, match="02_y.ipynb.*parameters"):
        declared_parameters(bare)
    (tmp_path / "notes.ipynb").write_text("{}")  # not part of the series: not NN_*
    assert [p.name for p in list_notebooks(tmp_path)] == ["01_x.ipynb", "02_y.ipynb"]


# ---- headless execution ------------------------------------------------------------------------


@pytest.mark.slow
def test_papermill_runs_the_series(tmp_path: Path):
    lines = []
    runs = run_notebooks(NOTEBOOKS, tmp_path, scale="smoke", only=["03_", "04_"], log=lines.append)
    assert [r.notebook.name for r in runs] == ["03_multigrid_schedule.ipynb", "04_dynamic_learning_rate.ipynb"]
    assert all(r.ok for r in runs), [r.error for r in runs]
    assert len(lines) == 2 and all(" s  ok" in line for line in lines)
    for run in runs:
        assert run.executed == tmp_path / run.notebook.name
        expected = {"output_dir": str(tmp_path / run.notebook.stem)}
        if run.notebook.name.startswith("04_"):  # 04 trains (its short runs take a scale); 03 declares none
            expected["scale"] = "smoke"
        assert run.parameters == expected
        nb = nbformat.read(str(run.executed), as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.execution_count is not None for c in code)
        kinds = {k for c in code for o in c.outputs for k in o.get("data", {})}
        assert "image/png" in kinds and "application/vnd.jupyter.widget-view+json" in kinds
        assert not any(o.output_type == "error" for c in code for o in c.outputs)
        assert sorted((tmp_path / run.notebook.stem).glob("*.png")), "figures saved into output_dir"


@pytest.mark.slow
def test_failing_cell_is_named(tmp_path: Path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    write_notebook(folder / "01_fails.ipynb", [
        parameters_cell('scale = "paper"'),
        new_code_cell("assert scale == 'smoke', scale"),
        new_code_cell("# NBVAL_CHECK_OUTPUT\nx = 1\nraise ValueError('stage table is wrong')"),
    ])
    result = subprocess.run([sys.executable, str(REPO / "tools" / "run_notebooks.py"), "--notebooks", str(folder),
                             "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    assert ('01_fails.ipynb: cell 3 of 3 ("x = 1") raised ValueError: stage table is wrong'
            in result.stdout + result.stderr)
    assert "0 of 1 notebooks ran" in result.stdout
    assert (tmp_path / "out" / "01_fails.ipynb").is_file()  # the executed copy, with the error, is kept


@pytest.mark.slow
def test_notebook_7_trains_a_table_on_two_processes_under_papermill(tmp_path: Path):
    """``-p nproc 2``: notebook 7 runs `torchrun --standalone --nproc_per_node 2 -m mgvsr reproduce ...` (gloo
    on the CPU), streams its output, and reads the finished runs back into the table and the claims."""
    import papermill

    out = tmp_path / "nb7"
    papermill.execute_notebook(str(NOTEBOOKS / "07_reproducing_the_tables.ipynb"), str(tmp_path / "07.ipynb"),
                               parameters=dict(scale="smoke", nproc=2, table="4", device="cpu", output_dir=str(out)),
                               kernel_name="python3", progress_bar=False, cwd=str(tmp_path))
    runs_dir = tmp_path / "runs" / "reproduce-smoke"
    logs = sorted(runs_dir.rglob("log.jsonl"))
    assert len(logs) == 3  # Table 4's two rows and Table 1's baseline they compare with
    for log in logs:
        start = json.loads(log.read_text().splitlines()[0])
        assert start["world_size"] == 2 and start["setup"]["world_size"] == 2
    nb = nbformat.read(str(tmp_path / "07.ipynb"), as_version=4)
    text = notebook_text(nb)
    assert "torch.distributed.run --standalone --nproc_per_node 2 -m mgvsr reproduce --table 4" in text
    assert "What reproduced at scale 'smoke'" in text and (out / "table4-smoke.md").is_file()


def test_strip_notebooks_executes_with_a_given_parameter_and_stores_the_defaults(tmp_path):
    """``strip_notebooks.py --execute --param NN:NAME=VALUE``: the notebook runs with the value (a real
    kernel), the stored code keeps its default, papermill's injected cell is not stored; a parameter the
    notebook does not declare is refused, naming the ones it does."""
    nb = new_notebook(cells=[new_code_cell("x = 1"), new_code_cell("print(x * 2)")])
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "01_tiny.ipynb"
    path.write_text(nbformat.writes(nb), encoding="utf-8")
    tool = [sys.executable, str(REPO / "tools" / "strip_notebooks.py"), "--execute"]
    done = subprocess.run([*tool, "--param", "01:x=21", str(path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    stored = nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
    assert [c.source for c in stored.cells] == ["x = 1", "print(x * 2)"]
    assert stored.cells[1].outputs[0]["text"] == "42\n"
    refused = subprocess.run([*tool, "--param", "01:y=3", str(path)], capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "01_tiny.ipynb has no parameter 'y' (it declares x)" in refused.stderr


def test_strip_notebooks_takes_a_folder_of_notebooks(tmp_path):
    """``strip_notebooks.py --check FOLDER`` checks the folder's NN_*.ipynb notebooks (a folder was read as a
    file before); an unstripped one fails the check, naming it."""
    nb = new_notebook(cells=[new_code_cell("print(1)")])
    (tmp_path / "01_a.ipynb").write_text(notebook_text(strip_notebook(nb)), encoding="utf-8")
    (tmp_path / "notes.ipynb").write_text("not a notebook of the series", encoding="utf-8")
    tool = [sys.executable, str(REPO / "tools" / "strip_notebooks.py"), "--check", str(tmp_path)]
    done = subprocess.run(tool, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    nb.cells[0].outputs = [new_output("stream", text="1\n")]
    nb.cells[0].execution_count = 7
    (tmp_path / "02_b.ipynb").write_text(nbformat.writes(nb), encoding="utf-8")
    done = subprocess.run(tool, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "02_b.ipynb" in done.stdout + done.stderr
