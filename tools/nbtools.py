"""The tutorial notebooks, run headless and kept lean in git (tooling, not part of the library).

Running (``tools/run_notebooks.py``, CI)::

    runs = run_notebooks("notebooks", "artifacts/notebooks", scale="smoke")

executes every ``notebooks/NN_*.ipynb`` in order with papermill, in the notebook's own
folder (as JupyterLab would), and writes the executed copies into the artifacts folder.
Each notebook gets, of ``scale``, ``device``, ``data_root``, ``spynet`` and ``output_dir``, the
parameters its ``parameters`` cell declares (``output_dir`` is ``<artifacts>/<notebook
stem>``).  A failing cell is named by notebook, cell number and first line.

Storing (``tools/strip_notebooks.py``): :func:`strip_notebook` is the form kept in git: the
outputs a reader should see on GitHub (text, tables, figures of a run at the ``lesson`` scale),
without widgets, progress bars, widget state, papermill's records or the Python version.  Cells
marked ``# NBVAL_CHECK_OUTPUT`` hold text only: nbval (``pytest --nbval-lax``) compares those,
so they print what does not depend on the scale.
See ``notebooks/README.md``.
"""

from __future__ import annotations

import copy
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


CHECK_MARKER = "NBVAL_CHECK_OUTPUT"
CHECK_TAG = "nbval-check-output"
INJECTED_TAG = "injected-parameters"  # papermill's cell of injected parameters
ERROR_TAG = "papermill-error-cell-tag"  # papermill's banners in a failed notebook
KNOWN_PARAMETERS = ("scale", "device", "data_root", "spynet", "output_dir")
KERNEL = "python3"
CELL_TIMEOUT = 600  # seconds per cell
NOTEBOOK_NAME = re.compile(r"^\d\d_.*\.ipynb$")


class NotebookError(Exception):
    """A notebook that cannot be run or stored as it is."""


# --------------------------------------------------------------------------------------
# Finding and running
# --------------------------------------------------------------------------------------


def list_notebooks(folder: str | Path = "notebooks") -> list[Path]:
    """The series in reading order: ``folder/NN_*.ipynb``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NotebookError(f"notebook folder {folder} does not exist")
    paths = sorted(p for p in folder.iterdir() if NOTEBOOK_NAME.match(p.name))
    if not paths:
        raise NotebookError(f"no notebooks named NN_*.ipynb in {folder}")
    return paths


def declared_parameters(path: str | Path) -> dict[str, Any]:
    """The names and default values in a notebook's ``parameters`` cell (papermill's reading).

    A notebook without a cell tagged ``parameters`` is a NotebookError: every notebook of
    the series declares at least one.
    """
    import nbformat
    import papermill

    nb = nbformat.read(str(path), as_version=4)
    if not any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb.cells):
        raise NotebookError(f"{path}: no cell is tagged 'parameters' (papermill needs one)")
    return {name: info["default"] for name, info in papermill.inspect_notebook(str(path)).items()}


@dataclass
class NotebookRun:
    """One executed notebook: where it came from, where the executed copy is, how long it
    took, and ``error`` (None when every cell ran)."""

    notebook: Path
    executed: Path
    seconds: float
    parameters: dict
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _cell_label(notebook: Path, executed: Path, cell_index: int, source: str) -> str:
    """``cell 7 of 21 ("plan = get_preset(...)")``, numbered in the stored notebook.

    papermill's ``cell_index`` counts the cells it ran (with its injected-parameters cell);
    the executed copy also holds the error banners it adds afterwards.  The failing cell is
    found by id, else by its source.
    """
    import nbformat

    stored = nbformat.read(str(notebook), as_version=4)
    index = None
    try:
        ran = nbformat.read(str(executed), as_version=4)
        ran_cells = [c for c in ran.cells if ERROR_TAG not in c.get("metadata", {}).get("tags", [])]
        cell_id = ran_cells[cell_index].get("id")
        index = next(i for i, c in enumerate(stored.cells) if c.get("id") == cell_id)
    except (OSError, IndexError, StopIteration, ValueError):
        index = next((i for i, c in enumerate(stored.cells) if c.source == source), None)
    if index is None:
        return f"cell {cell_index + 1} of the executed copy"
    lines = [line.strip() for line in stored.cells[index].source.splitlines()]
    first = next((line for line in lines if line and not line.startswith("# NBVAL_")), "")
    return f'cell {index + 1} of {len(stored.cells)} ("{first[:60]}")'


def run_notebook(path: str | Path, out_dir: str | Path, parameters: dict | None = None) -> NotebookRun:
    """Execute ``path`` with papermill into ``out_dir/<name>``; never raises for a failing cell.

    ``parameters`` are passed only where the notebook declares them.  The kernel runs in the
    notebook's folder.  The executed copy is written even when a cell fails.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    path, out_dir = Path(path).resolve(), Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    executed = out_dir / path.name
    declared = declared_parameters(path)
    given = {k: v for k, v in (parameters or {}).items() if k in declared}
    start = time.perf_counter()
    error = None
    try:
        papermill.execute_notebook(str(path), str(executed), parameters=given, kernel_name=KERNEL,
                                   cwd=str(path.parent), progress_bar=False, execution_timeout=CELL_TIMEOUT)
    except PapermillExecutionError as exc:
        error = f"{path.name}: {_cell_label(path, executed, exc.cell_index, exc.source)} raised {exc.ename}: {exc.evalue}"
    except Exception as exc:  # kernel died, timeout, unreadable notebook: still name the notebook
        error = f"{path.name}: {type(exc).__name__}: {exc}"
    return NotebookRun(path, executed, time.perf_counter() - start, given, error)


def run_notebooks(folder: str | Path = "notebooks", out_dir: str | Path = "artifacts/notebooks",
                  scale: str = "smoke", device: str | None = None, data_root: str | None = None,
                  only: list[str] | None = None, log=print, spynet: str | None = None) -> list[NotebookRun]:
    """Run the series in order (all, or those whose file name contains one of ``only``).

    Each notebook gets ``output_dir = out_dir/<stem>`` and ``scale`` / ``device`` /
    ``data_root`` / ``spynet`` (those given) if its parameters cell declares them.  ``log`` gets one line
    per notebook with its time.  Returns every run; check ``run.ok``.
    """
    paths = list_notebooks(folder)
    if only:
        paths = [p for p in paths if any(o in p.name for o in only)]
        if not paths:
            raise NotebookError(f"no notebook in {folder} matches {only}")
    out_dir = Path(out_dir)
    runs = []
    for path in paths:
        parameters = dict(scale=scale, output_dir=str((out_dir / path.stem).resolve()))
        if device is not None:
            parameters["device"] = device
        if data_root is not None:
            parameters["data_root"] = data_root
        if spynet is not None:
            parameters["spynet"] = spynet
        run = run_notebook(path, out_dir, parameters)
        log(f"{path.name:<40} {run.seconds:7.1f} s  {'ok' if run.ok else 'FAILED'}")
        if not run.ok:
            log(f"  {run.error}")
        runs.append(run)
    return runs


# --------------------------------------------------------------------------------------
# Storing: the lean form kept in git
# --------------------------------------------------------------------------------------


def is_checked(cell) -> bool:
    """A code cell whose output nbval compares: a ``# NBVAL_CHECK_OUTPUT`` line or the tag."""
    if cell.get("cell_type") != "code":
        return False
    if CHECK_TAG in cell.get("metadata", {}).get("tags", []):
        return True
    return any(line.strip() == f"# {CHECK_MARKER}" for line in cell.get("source", "").splitlines())


WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def _checked_output(output: dict, where: str) -> dict:
    """A checked cell's output as stored: text only, no execution count or metadata."""
    kind = output.get("output_type")
    if kind == "stream":
        return {"output_type": "stream", "name": output["name"], "text": output["text"]}
    data = dict(output.get("data", {}))
    rich = sorted(k for k in data if k != "text/plain")
    if rich:
        raise NotebookError(f"{where} is checked by nbval but shows {', '.join(rich)}; "
                            "a checked cell should print() text only")
    return {"output_type": kind, "data": data, "metadata": {}}


def _published_output(output: dict) -> dict | None:
    """Another cell's output as stored for readers (GitHub, nbviewer): printed text, tables and
    figures; None for what a static page cannot show or should not (a widget, whose state is
    not stored; stderr: progress bars and warnings)."""
    kind = output.get("output_type")
    if kind == "stream":
        return None if output["name"] == "stderr" else {"output_type": "stream", "name": "stdout", "text": output["text"]}
    data = dict(output.get("data", {}))
    if WIDGET_MIME in data:
        return None
    metadata = {k: v for k, v in dict(output.get("metadata", {})).items() if k in ("image/png",)}
    return {"output_type": kind, "data": data, "metadata": metadata}


def strip_notebook(nb):
    """The form of ``nb`` (an nbformat NotebookNode) kept in git; returns a new node.

    - papermill's cells (injected parameters, error banners) are removed;
    - an error output anywhere is a NotebookError: a stored notebook runs;
    - code cells keep what a reader should see on GitHub: printed text, tables, figures.  Dropped:
      stderr (progress bars, warnings) and widgets (their state is not stored; a static page shows
      nothing for them).  Checked cells (:func:`is_checked`) keep text only (an image there is a
      NotebookError): nbval compares them;
    - execution counts: a cell with outputs (and every checked cell: nbval needs one) gets its
      number among the code cells, the count a top-to-bottom run gives; others None;
    - cell metadata: only ``tags`` are kept;
    - notebook metadata: only ``kernelspec`` and the language's name (no widget state, no
      papermill records, no Python version).
    """
    import nbformat

    nb = copy.deepcopy(nb)
    cells, code_cells = [], 0
    papermills = (INJECTED_TAG, ERROR_TAG)
    kept = [c for c in nb.cells if not any(t in papermills for t in c.get("metadata", {}).get("tags", []))]
    for index, cell in enumerate(kept):
        tags = list(cell.get("metadata", {}).get("tags", []))
        cell["metadata"] = nbformat.NotebookNode({"tags": tags} if tags else {})
        if cell["cell_type"] != "code":
            cells.append(cell)
            continue
        code_cells += 1
        where = f"cell {index + 1}"
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                raise NotebookError(f"{where} raised {o.get('ename')}: {o.get('evalue')}; store a notebook that runs")
        if is_checked(cell):
            outputs = [_checked_output(o, where) for o in cell.get("outputs", [])]
        else:
            outputs = [o for o in map(_published_output, cell.get("outputs", [])) if o is not None]
        # nbval refuses a reference output without an execution count ("unrun reference cell")
        count = code_cells if outputs or is_checked(cell) else None
        cell["execution_count"] = count
        for o in outputs:
            if o["output_type"] == "execute_result":
                o["execution_count"] = count
        cell["outputs"] = [nbformat.from_dict(o) for o in outputs]
        cells.append(cell)
    nb.cells = cells
    meta = {}
    if "kernelspec" in nb.metadata:
        meta["kernelspec"] = nb.metadata["kernelspec"]
    meta["language_info"] = {"name": nb.metadata.get("language_info", {}).get("name", "python")}
    nb.metadata = nbformat.NotebookNode(meta)
    nb.nbformat, nb.nbformat_minor = 4, max(5, nb.get("nbformat_minor", 5))
    return nb


def notebook_text(nb) -> str:
    """``nb`` as the JSON text written to disk (nbformat's layout, one trailing newline)."""
    import nbformat

    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


RECORD_BEGIN = "<!-- outputs-record: written by tools/strip_notebooks.py --execute -->"
RECORD_END = "<!-- /outputs-record -->"


def outputs_record(seconds: dict[str, float], when: str | None = None, machine: str | None = None,
                   parameters: dict[str, dict[str, Any]] | None = None, cached_runs: int | None = None) -> str:
    """The paragraph saying when the stored outputs were made, on what machine, and each notebook's
    time (``seconds``: notebook name -> seconds of its execution) and the parameters it ran with other
    than its defaults (``parameters``: notebook name -> {name: value}); ``cached_runs``: how many
    finished runs the tutorial cache held before the series ran (its notebooks reuse them instead of
    training, so their minutes are not a fresh machine's), None: not said."""
    import os
    import platform
    from datetime import datetime, timezone

    import torch

    if when is None:
        when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if machine is None:
        from mgvsr.device import cpu_model

        machine = (f"{cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__} on {torch.get_num_threads()} threads, "
                   f"Python {platform.python_version()}, {'CUDA' if torch.cuda.is_available() else 'no GPU'}")
    parameters = parameters or {}
    given = lambda name: ", ".join(f"`{k} = {v!r}`" for k, v in parameters.get(name, {}).items()) or "-"  # noqa: E731
    rows = [f"| {name} | {s / 60:.1f} | {given(name)} |" for name, s in seconds.items()]
    cache = ("" if cached_runs is None else
             " The tutorial cache (`data/cache/tutorial`) was empty before the series ran." if cached_runs == 0 else
             f" The tutorial cache (`data/cache/tutorial`) held {cached_runs} finished runs before the series ran: "
             "the notebooks that would train them reused them, and their minutes are less than from an empty cache.")
    return "\n".join([RECORD_BEGIN,
                      f"The stored outputs were made on {when} by `python tools/strip_notebooks.py --execute` "
                      f"(every notebook at its defaults, `scale = \"lesson\"`, but for the parameters listed), on: "
                      f"{machine}.{cache}  Minutes per notebook, in order (runs shared between notebooks count once, in "
                      "the first that trains them; the README's demo had run before, see the README):",
                      "", "| notebook | minutes | parameters other than the defaults |", "|---|---|---|", *rows,
                      f"| all | {sum(seconds.values()) / 60:.1f} | |", RECORD_END])


def record_outputs(readme: str, record: str) -> str:
    """``readme`` with its outputs record (between :data:`RECORD_BEGIN` and :data:`RECORD_END`)
    replaced by ``record``, or appended when it has none."""
    if RECORD_BEGIN in readme and RECORD_END in readme:
        head, rest = readme.split(RECORD_BEGIN, 1)
        return head + record + rest.split(RECORD_END, 1)[1]
    return readme.rstrip("\n") + "\n\n" + record + "\n"


def execute_in_place(nb, folder: Path, parameters: dict[str, Any] | None = None):
    """Run ``nb`` top to bottom, the kernel in ``folder``: with its default parameters, or with
    ``parameters`` injected after its ``parameters`` cell as papermill injects them (in a cell tagged
    :data:`INJECTED_TAG`, which :func:`strip_notebook` drops: the stored code keeps its defaults)."""
    from nbclient import NotebookClient

    if parameters:
        from papermill.parameterize import parameterize_notebook

        for cell in nb.cells:  # what papermill's own loader adds: every cell's tags, its metadata record
            cell.metadata.setdefault("tags", [])
        nb.metadata.setdefault("papermill", {})
        nb = parameterize_notebook(nb, parameters, kernel_name=KERNEL, language="python")
    NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name=KERNEL, resources={"metadata": {"path": str(folder)}}).execute()
    return nb
