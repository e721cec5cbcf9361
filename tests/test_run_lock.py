"""One writer per run folder: the run decision (new / resume / finished / reuse / busy / refused) and
the folder's lock, held for the life of a run and released by the kernel when its process dies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mgvsr import runs
from mgvsr.options import TrainConfig
from mgvsr.presets import get_preset

REPO = Path(__file__).resolve().parent.parent


def spec(preset: str = "demo/basicvsr/baseline", iterations: int = 12) -> dict:
    return runs.run_spec(get_preset(preset).shrunk(iterations=iterations), TrainConfig(), device_type="cpu")


def finish(folder: Path, s: dict) -> None:
    """A finished run of ``s`` in ``folder``, as the trainer leaves one."""
    runs.write_spec(folder, s)
    (folder / runs.LOG_FILE).write_text(json.dumps({"event": "start", "it": 0}) + "\n"
                                        + json.dumps({"event": "end", "it": 12, "psnr": 25.0}) + "\n")
    (folder / runs.FINAL).write_bytes(b"weights")


def hold_lock(folder: Path) -> subprocess.Popen:
    """Another process holding ``folder``'s lock until it is killed."""
    code = ("import sys, time; from mgvsr.runs import RunLock; RunLock(sys.argv[1]).acquire(); "
            "print('held', flush=True); time.sleep(600)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_every_decision(tmp_path: Path):
    s = spec()
    new = runs.decide(tmp_path / "a", s)
    assert new.kind == "new" and new.trains and new.lock is None and not (tmp_path / "a").exists()
    finish(tmp_path / "done", s)
    assert runs.decide(tmp_path / "done", s).kind == "finished"
    reuse = runs.decide(tmp_path / "b", s, search=tmp_path)
    assert reuse.kind == "reuse" and reuse.folder == tmp_path / "done"
    assert reuse.describe(tmp_path) == "reused: done"
    other = runs.decide(tmp_path / "done", spec(iterations=6))
    assert other.kind == "refused" and "holds another run of demo/basicvsr/baseline" in other.reason
    with pytest.raises(runs.RunFolderError, match="holds another run"):
        other.check()
    assert runs.decide(tmp_path / "c", s, resume=True).reason.startswith("cannot resume: no checkpoint")
    runs.write_spec(tmp_path / "d", s)
    (tmp_path / "d" / runs.CHECKPOINT).write_bytes(b"state")
    assert runs.decide(tmp_path / "d", s).kind == "resume"
    assert runs.decide(tmp_path / "d", s, resume=False).kind == "refused"


def test_a_claimed_decision_holds_the_lock_until_released(tmp_path: Path):
    s = spec()
    claimed = runs.decide(tmp_path / "run", s, claim=True)
    assert claimed.kind == "new" and claimed.lock is not None and claimed.lock.held
    holder = runs.lock_holder(tmp_path / "run")
    assert holder is not None and f"process {os.getpid()} on " in holder
    claimed.lock.release()
    assert runs.lock_holder(tmp_path / "run") is None
    assert runs.decide(tmp_path / "run", s).kind == "new"


def test_another_process_makes_the_folder_busy_until_it_dies(tmp_path: Path):
    folder = tmp_path / "run"
    proc = hold_lock(folder)
    try:
        busy = runs.decide(folder, spec(), claim=True)
        assert busy.kind == "busy" and f"process {proc.pid} on " in busy.reason and busy.lock is None
        with pytest.raises(runs.RunFolderBusy, match=f"is in use: process {proc.pid} on "):
            busy.check()
        with pytest.raises(runs.RunFolderBusy):
            runs.remove_run(folder)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert runs.decide(folder, spec()).kind == "new"  # kill -9 leaves no stale lock


def test_a_lock_sent_to_another_process_holds_nothing(tmp_path: Path):
    import pickle

    lock = runs.RunLock(tmp_path).acquire()
    copy = pickle.loads(pickle.dumps(lock))
    assert lock.held and not copy.held
    copy.release()  # a no-op: the original still holds it
    assert runs.lock_holder(tmp_path) is not None
    lock.release()


@pytest.mark.slow
def test_two_trainings_into_one_folder_one_stops_at_once(tmp_path: Path):
    """Two ``mgvsr train`` commands on the same folder a moment apart: the second exits 2 naming the first."""
    out = tmp_path / "same"
    argv = [sys.executable, "-m", "mgvsr", "train", "--preset", "demo/basicvsr/ours", "--iterations", "20",
            "--eval-every", "100000", "--out", str(out), "--no-progress", "--workers", "0", "--device", "cpu"]
    first = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while runs.lock_holder(out) is None and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.poll() is None, first.communicate()
    t0 = time.monotonic()
    second = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert second.returncode == 2 and time.monotonic() - t0 < 30
    assert f"is in use: process {first.pid} on " in second.stderr
    assert first.wait(timeout=300) == 0
    records = runs.read_log(out)
    steps = [r["it"] for r in records if r["event"] == "step"]
    assert steps == list(range(20)) and [r["event"] for r in records].count("end") == 1


def test_a_run_resumes_only_on_the_device_count_it_started_on(tmp_path: Path):
    one = spec()
    two = runs.run_spec(get_preset("demo/basicvsr/baseline").shrunk(iterations=12), TrainConfig(),
                        device_type="cpu", world_size=2)
    assert "world_size" not in one and two["world_size"] == 2  # single-process specs are as they were
    runs.write_spec(tmp_path, two)
    (tmp_path / runs.CHECKPOINT).write_bytes(b"state")
    refused = runs.decide(tmp_path, one, resume=True)
    assert refused.kind == "refused"
    assert "on 2 process(es); this command has 1: resume it on as many" in refused.reason
