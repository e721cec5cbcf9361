"""What the tutorial notebooks share: the scale they run at, and where their training runs live.

Several notebooks use the same training runs: notebook 1 trains the demo (baseline against
ours on the sample clips), notebooks 5, 6 and 8 read it; notebooks 5 and 7 share the runs of
the paper's tables.  They find each other's runs through :func:`runs_dir`:

- run headless (``tools/run_notebooks.py`` gives every notebook ``output_dir =
  <artifacts>/<notebook>``): ``<artifacts>/runs``, beside the notebooks' own folders;
- run interactively (``output_dir`` empty): ``mgvsr.paths.cache_dir() / "tutorial"``.

A run that is already finished there is read, not retrained, so the first notebook that
needs it pays for it and the others are quick.

Scales: ``"ci"`` runs each notebook top to bottom on a 2-core CPU in a minute or two (the
numbers show the mechanics, not the paper's results); ``"paper"`` uses the sizes the
experiments are meant to have (the demo's full length; the paper's models on a GPU).
"""

from __future__ import annotations

from pathlib import Path

from mgvsr.errors import MgvsrError

SCALE_NAMES = ("ci", "paper")
# Baseline iterations of the demo at each scale (None: the preset's full length).
DEMO_ITERATIONS = {"ci": 24, "paper": None}
DEMO_EVALS = {"ci": 2, "paper": 6}


def check_scale(scale: str) -> str:
    """``scale`` if it is ``"ci"`` or ``"paper"``, else MgvsrError."""
    if scale not in SCALE_NAMES:
        raise MgvsrError(f"scale must be one of {', '.join(SCALE_NAMES)}, got {scale!r}")
    return scale


def runs_dir(output_dir: str | Path | None) -> Path:
    """Where the series keeps the training runs its notebooks share (see the module docstring)."""
    if output_dir:
        return Path(output_dir).resolve().parent / "runs"
    from mgvsr.paths import cache_dir

    return cache_dir() / "tutorial"


def demo_dir(scale: str, output_dir: str | Path | None) -> Path:
    """The folder of the demo runs at ``scale`` (``runs/demo-ci`` or ``runs/demo``)."""
    check_scale(scale)
    return runs_dir(output_dir) / ("demo-ci" if scale == "ci" else "demo")


def demo(scale: str, output_dir: str | Path | None, device: str = "auto", progress: bool = True) -> dict:
    """The demo's report (``report.json``'s dict) at ``scale``: read when both runs are finished
    in :func:`demo_dir`, trained (or resumed) otherwise, through :func:`mgvsr.demo.run_demo`.

    ``ci``: both runs shrunk to :data:`DEMO_ITERATIONS` baseline iterations (the same number of
    samples each); ``paper``: the demo as ``mgvsr demo`` runs it.
    """
    from mgvsr.demo import run_demo

    folder = demo_dir(scale, output_dir)
    return run_demo(folder, device=device, iterations=DEMO_ITERATIONS[scale], evals=DEMO_EVALS[scale],
                    progress=progress)


def reproduce_dir(scale: str, output_dir: str | Path | None) -> Path:
    """The folder of the paper's table runs at ``scale`` that notebooks 5 and 7 share."""
    check_scale(scale)
    return runs_dir(output_dir) / f"reproduce-{scale}"
