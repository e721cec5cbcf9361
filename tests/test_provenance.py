"""Which code trained a run (:mod:`mgvsr.provenance`): recorded in the spec; a finished run of other code is
refused in its folder, never reused, and shown as such by reproduce."""

from __future__ import annotations

import json
from dataclasses import fields, replace
from pathlib import Path

import pytest

from mgvsr import runs
from mgvsr.options import TrainConfig
from mgvsr.presets import Preset, get_preset
from mgvsr.provenance import TRAINING_CODE, code_identity, source_fingerprint


def package(tmp_path: Path, schedule: str) -> Path:
    pkg = tmp_path / "pkg"
    (pkg / "models").mkdir(parents=True, exist_ok=True)
    (pkg / "schedule.py").write_text(schedule)
    (pkg / "models" / "a.py").write_text("X = 1\n")
    return pkg


def test_the_fingerprint_follows_the_code_not_its_documentation(tmp_path: Path):
    first = source_fingerprint(package(tmp_path, '"""Doc."""\ndef f(x):\n    """What f does."""\n    return x + 1\n'))
    docs = source_fingerprint(package(tmp_path, '"""Other doc."""\n# a comment\ndef f(x):\n    """Else."""\n    return x + 1\n'))
    code = source_fingerprint(package(tmp_path, '"""Doc."""\ndef f(x):\n    """What f does."""\n    return x + 2\n'))
    assert first == docs != code and first.startswith("sha256:")


def test_the_spec_records_the_code_and_a_run_of_other_code_is_never_reused(tmp_path: Path):
    spec = runs.run_spec(get_preset("demo/basicvsr/baseline").shrunk(iterations=12), TrainConfig(), device_type="cpu")
    assert spec["code"] == code_identity() and spec["code"]["source"].startswith("sha256:")
    old = {**spec, "code": {"version": "0.0.9", "commit": "0123456789ab", "source": "sha256:" + "0" * 64}}
    folder = tmp_path / "done"
    runs.write_spec(folder, old)
    (folder / runs.LOG_FILE).write_text(json.dumps({"event": "start", "it": 0}) + "\n"
                                        + json.dumps({"event": "end", "it": 12, "psnr": 25.0}) + "\n")
    (folder / runs.FINAL).write_bytes(b"weights")
    with pytest.raises(runs.RunFolderError, match=r"trained by mgvsr 0.0.9 at 0123456789ab .*not by this code"):
        runs.check_folder(folder, spec)
    assert runs.find_finished(spec, tmp_path) is None  # not reused from elsewhere either
    assert runs.decide(tmp_path / "new", spec, search=tmp_path).kind == "new"
    assert runs.decide(folder, spec).kind == "refused"


def test_every_preset_field_that_changes_a_run_is_in_its_spec():
    # the presets are not fingerprinted (a preset edit stales only the runs whose spec it changes):
    # safe only while the spec records every field that is not a label
    assert "presets" not in TRAINING_CODE
    preset = get_preset("demo/basicvsr/baseline").shrunk(iterations=12)
    spec = runs.run_spec(replace(preset, ema_decay=0.9), TrainConfig(), device_type="cpu")
    training_fields = {f.name for f in fields(Preset)} - set(runs.PRESET_LABELS)
    assert training_fields == {"model", "dataset", "plan", "test_dataset", "flow_frozen_iters", "flow_lr_mult",
                               "fusion_only_iters", "ema_decay"}
    assert training_fields <= set(spec)
    assert spec["plan"]["stages"] == [stage.to_dict() for stage in preset.plan.stages]
