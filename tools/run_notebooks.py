#!/usr/bin/env python
"""Execute the tutorial notebooks headless with papermill, in reading order.

    python tools/run_notebooks.py                          # all, scale=smoke, into artifacts/notebooks/
    python tools/run_notebooks.py --only 03 04             # notebooks whose name contains 03 or 04
    python tools/run_notebooks.py --scale paper --device cuda --data-root /data/REDS \
        --spynet spynet_sintel_final-3d2a1287.pth --out runs/nb

Prints the time of every notebook; exits 1 naming the notebook and the cell if any cell
failed (the executed copy, with the error, is in the output folder).  The logic is
`tools/nbtools.py`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nbtools import NotebookError, run_notebooks

REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", type=Path, default=REPO / "notebooks", help="folder of NN_*.ipynb")
    parser.add_argument("--out", type=Path, default=REPO / "artifacts" / "notebooks",
                        help="where the executed copies go (default: artifacts/notebooks)")
    parser.add_argument("--scale", default="smoke", choices=("smoke", "lesson", "paper"),
                        help="passed to notebooks that declare it (default smoke: CI's, the mechanics only)")
    parser.add_argument("--device", help="passed to notebooks that declare it (default: theirs)")
    parser.add_argument("--data-root", help="passed to notebooks that declare it (default: theirs)")
    parser.add_argument("--spynet", help="pretrained SpyNet weights (or 'none'), passed to notebooks that declare it")
    parser.add_argument("--only", nargs="+", metavar="TEXT", help="run only notebooks whose file name contains TEXT")
    args = parser.parse_args(argv)
    try:
        runs = run_notebooks(args.notebooks, args.out, scale=args.scale, device=args.device,
                             data_root=args.data_root, only=args.only, spynet=args.spynet)
    except NotebookError as exc:
        print(f"run_notebooks: error: {exc}", file=sys.stderr)
        return 2
    failed = [r for r in runs if not r.ok]
    total = sum(r.seconds for r in runs)
    print(f"{len(runs) - len(failed)} of {len(runs)} notebooks ran in {total:.1f} s; executed copies in {args.out}")
    for run in failed:
        print(f"FAILED {run.error}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
