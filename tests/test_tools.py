"""Every script in ``tools/`` starts (``--help``); the ones a test does not run elsewhere run here.
(``module_graph``: tests/test_layout.py; ``run_notebooks``, ``strip_notebooks`` and the ``nbtools`` they
share: tests/test_notebooks.py; ``browser_check``: below where Chromium is installed, and in ``.ci/run``.)"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = sorted(p for p in (REPO / "tools").glob("*.py") if "__main__" in p.read_text())
RUN_ELSEWHERE = {"module_graph": "tests/test_layout.py", "run_notebooks": "tests/test_notebooks.py",
                 "strip_notebooks": "tests/test_notebooks.py", "browser_check": "tests/test_tools.py"}


def test_every_tool_script_is_run_by_a_test():
    names = {p.stem for p in SCRIPTS}
    assert names == set(RUN_ELSEWHERE), names ^ set(RUN_ELSEWHERE)
    for name, test in RUN_ELSEWHERE.items():
        assert name in (REPO / test).read_text(), (name, test)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_starts_with_help(script: Path):
    done = subprocess.run([sys.executable, str(script), "--help"], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("usage:"), done.stderr


@pytest.mark.slow
def test_browser_check_drives_a_notebook_in_chromium(tmp_path: Path):
    """browser_check: JupyterLab served here, a notebook opened and a widget dragged in headless Chromium."""
    if shutil.which("chromium") is None:
        pytest.skip("Chromium is not installed here (.ci/run installs it and runs this check)")
    pytest.importorskip("playwright", reason="the browser extra is not installed")
    done = subprocess.run([sys.executable, "tools/browser_check.py", "--out", str(tmp_path)], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert any(tmp_path.glob("*.png"))
