#!/usr/bin/env python
"""The notebooks as git stores them: with the outputs a reader should see, regenerated at the lesson scale.

    python tools/strip_notebooks.py --execute       # run every notebook at its defaults (lesson), store it
    python tools/strip_notebooks.py                 # store notebooks/*.ipynb in their form, in place
    python tools/strip_notebooks.py --check         # exit 1 if any notebook is not in its stored form
    python tools/strip_notebooks.py --execute notebooks/03_multigrid_schedule.ipynb
    python tools/strip_notebooks.py --execute --param 07:train_missing=False   # a parameter of one notebook

The stored form keeps text, tables and figures, and drops widgets, progress bars (stderr), widget
state and papermill's records; cells marked ``# NBVAL_CHECK_OUTPUT`` keep text only (the reference
nbval compares).  ``--execute`` of the whole series also writes, into notebooks/README.md, when the
outputs were made, on what machine, each notebook's time, and how many finished runs the tutorial
cache held before (``rm -rf data/cache/tutorial`` first times the series from nothing).  See
notebooks/README.md.  The logic is `strip_notebook` in `tools/nbtools.py`.
"""

from __future__ import annotations

import argparse
import ast
import sys
import time
from pathlib import Path

import nbformat

from nbtools import (NotebookError, declared_parameters, execute_in_place, list_notebooks, notebook_text, outputs_record,
                     record_outputs, strip_notebook)

REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path,
                        help="notebooks, or folders of NN_*.ipynb notebooks (default: notebooks/)")
    parser.add_argument("--execute", action="store_true", help="run each notebook first (refreshes checked outputs)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a notebook is not stripped")
    parser.add_argument("--param", action="append", default=[], metavar="NN:NAME=VALUE",
                        help="with --execute: run the notebooks whose name starts with NN with parameter NAME set "
                             "to VALUE (a Python literal, else a string); recorded in notebooks/README.md; repeatable")
    args = parser.parse_args(argv)
    try:
        paths = [n for p in args.paths or [REPO / "notebooks"] for n in (list_notebooks(p) if p.is_dir() else [p])]
        given = parse_params(args.param, paths)
        dirty, seconds = [], {}
        whole_series = args.execute and not args.paths
        cached_runs = tutorial_cache_runs() if whole_series else None
        for path in paths:
            text = path.read_text(encoding="utf-8")
            nb = nbformat.reads(text, as_version=4)
            if args.execute:
                print(f"executing {path} ...", flush=True)
                start = time.perf_counter()
                nb = execute_in_place(nb, path.parent, given.get(path.name))
                seconds[path.name] = time.perf_counter() - start
                print(f"  {seconds[path.name]:.0f} s", flush=True)
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
        if whole_series:  # say when, where, how long, and from what cache
            readme = REPO / "notebooks" / "README.md"
            record = outputs_record(seconds, parameters=given, cached_runs=cached_runs)
            readme.write_text(record_outputs(readme.read_text(encoding="utf-8"), record), encoding="utf-8")
            print(f"recorded in {readme}")
    except NotebookError as exc:
        print(f"strip_notebooks: error: {exc}", file=sys.stderr)
        return 2
    if args.check and dirty:
        for path in dirty:
            print(f"not in its stored form: {path} (run python tools/strip_notebooks.py {path})", file=sys.stderr)
        return 1
    return 0


def tutorial_cache_runs() -> int:
    """How many finished runs the notebooks' shared run cache holds (imported here: ``--check`` and
    single notebooks do not load the package and torch for it)."""
    from mgvsr.runs import FINAL
    from mgvsr.tutorial.series import runs_dir

    return sum(1 for _ in runs_dir(None).rglob(FINAL))


def parse_params(specs: list[str], paths: list[Path]) -> dict[str, dict]:
    """``NN:NAME=VALUE`` strings -> {notebook name: {NAME: value}}; each must name a notebook of ``paths``
    and a parameter its ``parameters`` cell declares."""
    out: dict[str, dict] = {}
    for spec in specs:
        prefix, sep, assignment = spec.partition(":")
        name, eq, text = assignment.partition("=")
        if not (sep and eq and prefix and name):
            raise NotebookError(f"--param {spec!r}: expected NN:NAME=VALUE, e.g. 07:train_missing=False")
        matches = [p for p in paths if p.name.startswith(prefix)]
        if not matches:
            raise NotebookError(f"--param {spec!r}: no notebook to run starts with {prefix!r}")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        for path in matches:
            declared = declared_parameters(path)
            if name not in declared:
                raise NotebookError(f"--param {spec!r}: {path.name} has no parameter {name!r} "
                                    f"(it declares {', '.join(declared)})")
            out.setdefault(path.name, {})[name] = value
    return out


if __name__ == "__main__":
    sys.exit(main())
