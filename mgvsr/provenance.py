"""Which code trained a run: recorded in every run folder's spec, so that a finished run from other code
is reported as such and never reused silently (stored results always come from the code at hand).

:func:`code_identity` is ``{"version", "commit", "source"}``: the package's version, the git commit of a
checkout (with ``+changes`` where the training code differs from it; None outside a checkout), and
``source``, a fingerprint of the code that decides what a run computes (:data:`TRAINING_CODE`): the
SHA-256 of each module's syntax tree without its docstrings, so that documentation edits do not make
runs stale while any change to a statement does.  Torch-free.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import subprocess
from pathlib import Path

from mgvsr import __version__
from mgvsr.paths import PACKAGE_DIR, REPO_DIR

# The modules and packages (relative to mgvsr/) whose code decides a run's numbers: the schedule, the
# models, the data, the engine, the evaluation.  Reporting, the command line and the lessons only read
# runs.  The presets (and scales) are not code of a run but its settings: what a preset makes a run train
# (model, datasets, plan, warm starts, EMA: every field of Preset but its labels, PRESET_LABELS in
# mgvsr.runs) is written into the run's spec and compared there, so editing one preset stales exactly
# the runs it changes.
TRAINING_CODE = ("schedule.py", "models", "data", "device.py", "distributed.py", "step.py", "train.py",
                 "callbacks.py", "launch.py", "options.py", "evaluate.py", "metrics.py", "checkpointing.py",
                 "preemption.py")


def training_files(package: Path = PACKAGE_DIR) -> list[Path]:
    """The source files of :data:`TRAINING_CODE`, sorted."""
    files = []
    for name in TRAINING_CODE:
        path = package / name
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path] if path.is_file() else []
    return files


def _without_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return tree


def source_fingerprint(package: Path = PACKAGE_DIR) -> str:
    """``"sha256:<hex>"`` of the training code's syntax trees (docstrings and comments left out)."""
    digest = hashlib.sha256()
    for path in training_files(package):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(ast.dump(_without_docstrings(ast.parse(path.read_text()))).encode())
    return f"sha256:{digest.hexdigest()}"


def git_commit(repo: Path = REPO_DIR) -> str | None:
    """The checkout's commit, ``+changes`` appended where the training code differs from it; None outside a
    git checkout (an installed package)."""
    if not (repo / ".git").exists():
        return None
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=repo, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--", *(f"mgvsr/{n}" for n in TRAINING_CODE)],
                                 cwd=repo, capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+changes" if changed else "")


@functools.lru_cache(maxsize=1)
def code_identity() -> dict:
    """``{"version", "commit", "source"}`` of the code running now (see the module docstring)."""
    return {"version": __version__, "commit": git_commit(), "source": source_fingerprint()}


def describe(code: dict | None) -> str:
    """``"0.1.0 at 1a2b3c4d5e6f (source sha256:0123abcd…)"`` for people; ``"unrecorded code"`` for None."""
    if not code:
        return "code that recorded no identity"
    where = f" at {code['commit']}" if code.get("commit") else ""
    return f"mgvsr {code.get('version', '?')}{where} (source {str(code.get('source', '?'))[:19]}…)"
