#!/usr/bin/env python
"""Keep the notebooks lean in git: outputs only where nbval compares them.

    python tools/strip_notebooks.py                 # strip notebooks/*.ipynb in place
    python tools/strip_notebooks.py --execute       # run each, keep the checked outputs, strip the rest
    python tools/strip_notebooks.py --check         # exit 1 if any notebook is not in its stored form
    python tools/strip_notebooks.py notebooks/03_multigrid_schedule.ipynb

Cells marked ``# NBVAL_CHECK_OUTPUT`` keep their text outputs (the reference nbval compares);
every other output, execution counts, widget state and papermill's records are removed.
Use ``--execute`` after changing a checked cell or what it prints.  See notebooks/README.md.
The logic is `strip_notebook` in `tools/nbtools.py`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

from nbtools import NotebookError, execute_in_place, list_notebooks, notebook_text, strip_notebook

REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: notebooks/NN_*.ipynb)")
    parser.add_argument("--execute", action="store_true", help="run each notebook first (refreshes checked outputs)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a notebook is not stripped")
    args = parser.parse_args(argv)
    try:
        paths = args.paths or list_notebooks(REPO / "notebooks")
        dirty = []
        for path in paths:
            text = path.read_text(encoding="utf-8")
            nb = nbformat.reads(text, as_version=4)
            if args.execute:
                print(f"executing {path} ...", flush=True)
                nb = execute_in_place(nb, path.parent)
            try:
                stripped = notebook_text(strip_notebook(nb))
            except NotebookError as exc:
                raise NotebookError(f"{path}: {exc}") from None
            if stripped == text:
                continue
            dirty.append(path)
            if not args.check:
                path.write_text(stripped, encoding="utf-8")
                print(f"stripped {path}")
    except NotebookError as exc:
        print(f"strip_notebooks: error: {exc}", file=sys.stderr)
        return 2
    if args.check and dirty:
        for path in dirty:
            print(f"not in its stored form: {path} (run python tools/strip_notebooks.py {path})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
