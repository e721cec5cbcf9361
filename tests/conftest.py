"""Shared fixtures: the developers' real video (skipped cleanly where absent)."""

from __future__ import annotations

import os
from pathlib import Path

# pytest-xdist (``-n``, on by default: pyproject.toml) runs the tests in several worker processes that
# share the cores: each worker, and every process its tests start, gets its share of the threads.  Two
# processes each spinning two OpenMP threads on a 2-core machine make a step ~10x slower.
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if WORKERS > 1:
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // WORKERS))

import pytest  # noqa: E402  (after the thread count: torch reads it when it loads)
import torch  # noqa: E402

from mgvsr.paths import shared_data_dir


def pytest_configure(config):
    """Render the sample clips once, before the xdist workers start (in a fresh checkout they are not
    there yet; two workers rendering them at once would replace the folder under each other's feet)."""
    if not hasattr(config, "workerinput"):  # the controller (or a run without workers)
        from mgvsr.data.sample import sample_root

        sample_root()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (or ``$MGVSR_SHARED_DATA``); skips the test where it is absent."""
    path = shared_data_dir()
    if path is None:
        pytest.skip("real reference video not found: set MGVSR_SHARED_DATA or place it at ../shared/data")
    return path


@pytest.fixture(scope="session")
def vid4_root(shared_data: Path) -> Path:
    root = shared_data / "vid4"
    if not (root / "GT").is_dir():
        pytest.skip(f"Vid4 ground truth not found under {root}")
    return root


@pytest.fixture(scope="session")
def vimeo_root(shared_data: Path) -> Path:
    root = shared_data / "vimeo90k_sample"
    if not (root / "sequences").is_dir():
        pytest.skip(f"Vimeo-90K sample not found under {root}")
    return root


@pytest.fixture
def one_thread():
    """torch on one thread for the test: small convolutions run ~10x faster on one thread when the
    other core is busy (a shared 2-core machine).  Use with ``pytest.mark.usefixtures``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
