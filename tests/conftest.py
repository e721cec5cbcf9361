"""Shared fixtures: the developers' real video (skipped cleanly where absent)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mgvsr.paths import shared_data_dir


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
