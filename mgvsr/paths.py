"""Where things live on disk: the repository, the shared reference data, the cache."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent


def shared_data_dir() -> Path | None:
    """The developers' real-video folder (``../shared/data`` beside a checkout), or None.

    ``MGVSR_SHARED_DATA`` overrides the location.  A user's machine usually has none:
    callers must treat None as "skip", never as an error.
    """
    env = os.environ.get("MGVSR_SHARED_DATA")
    candidates = [Path(env)] if env else [REPO_DIR.parent / "shared" / "data"]
    for path in candidates:
        if path.is_dir():
            return path
    return None


def cache_dir() -> Path:
    """A writable, git-ignored cache: ``data/cache`` in a checkout, else ``~/.cache/mgvsr``.

    ``MGVSR_CACHE`` overrides it.
    """
    env = os.environ.get("MGVSR_CACHE")
    if env:
        path = Path(env)
    elif (REPO_DIR / "pyproject.toml").is_file() and (REPO_DIR / "data").is_dir():
        path = REPO_DIR / "data" / "cache"
    else:
        path = Path.home() / ".cache" / "mgvsr"
    path.mkdir(parents=True, exist_ok=True)
    return path
