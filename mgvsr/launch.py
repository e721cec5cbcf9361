"""A preset and the options of a run in, a trained run folder out: :func:`run_preset`.

    from mgvsr.launch import run_preset
    from mgvsr.options import RunOptions
    result = run_preset(get_preset("demo/basicvsr/ours"), "runs/ours", RunOptions(device="cpu"))

One path from a preset to a run, used by ``mgvsr train``, ``mgvsr reproduce``, ``mgvsr demo``, the dry
run and the notebooks:

1. :func:`run_setup`: what SpyNet starts from (:func:`mgvsr.models.flow_init`), the trainer's
   :class:`~mgvsr.options.TrainConfig` (:func:`train_config`) and the run's spec
   (:func:`mgvsr.runs.run_spec`): the one place they are derived from a preset and options;
2. :func:`mgvsr.runs.decide`: new, resume, finished, reuse a finished twin, busy or refused —
   computed by rank 0 for every process, the run folder's lock taken by the process that writes it;
3. the model built with the seed first (:func:`initial_model`), the data opened, the
   :class:`~mgvsr.train.Trainer` run, the lock released.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from mgvsr import runs
from mgvsr.data.datasets import open_sources, verify_store
from mgvsr.device import default_workers, resolve_device
from mgvsr.distributed import decided_by_rank0, rank_world
from mgvsr.models import MODEL_CONFIGS, FlowInit, build_model, flow_init
from mgvsr.options import RunOptions, TrainConfig
from mgvsr.presets import Preset
from mgvsr.train import Trainer


def train_config(preset: Preset, options: RunOptions, flow: FlowInit | None = None) -> TrainConfig:
    """The :class:`~mgvsr.options.TrainConfig` a run of ``preset`` with ``options`` trains with: the preset's
    warm start (SpyNet frozen, or EDVR's fusion-only start), its EMA of the weights and the options that
    reach the loop."""
    recipe, iterations = preset.warm_start
    extra = {"preset": preset.name, "model": preset.model, "dataset": preset.dataset,
             "spynet": None if flow is None else flow.spec}
    return TrainConfig(frozen_iters=iterations, frozen=recipe or "flow", flow_lr_mult=preset.flow_lr_mult,
                       seed=options.seed, device=options.device, micro_batch=options.micro_batch, amp=options.amp,
                       num_workers=default_workers(resolve_device(options.device)) if options.workers is None else options.workers, eval_every=options.eval_every,
                       checkpoint_every=options.checkpoint_every, progress=options.progress,
                       tensorboard=options.tensorboard, ema_decay=preset.ema_decay, extra=extra)


@dataclass(frozen=True)
class RunSetup:
    """A preset made ready to run with some options: ``flow`` (what SpyNet starts from), ``cfg`` (the
    trainer's configuration) and ``spec`` (what the run folder records: :func:`mgvsr.runs.run_spec`)."""

    preset: Preset
    options: RunOptions
    flow: FlowInit
    cfg: TrainConfig
    spec: dict = field(repr=False)


def run_setup(preset: Preset, options: RunOptions, world: int | None = None) -> RunSetup:
    """:class:`RunSetup` of ``preset`` with ``options`` on ``world`` processes (None: this process group's).
    A model whose recipe needs pretrained SpyNet weights (:data:`mgvsr.models.PRETRAINED_FLOW`) refuses to
    start without ``options.spynet``."""
    spynet = options.spynet
    flow = spynet if isinstance(spynet, FlowInit) else flow_init(preset.model, spynet,
                                                                  what=f"{preset.name} ({preset.model})")
    cfg = train_config(preset, options, flow)
    spec = runs.run_spec(preset, cfg, device_type=resolve_device(options.device).type, root=options.root,
                         spynet=flow.spec, spynet_file=None if flow.file is None else flow.file.path,
                         world_size=rank_world()[1] if world is None else world,
                         model_config=MODEL_CONFIGS[preset.model][2])
    return RunSetup(preset, options, flow, cfg, spec)


@dataclass
class RunResult:
    """A preset's run: its folder, its summary (the log's ``end`` record) and how it was obtained:
    ``"trained"``, ``"resumed"`` (finished after a resume), ``"finished"`` (found done in its folder)
    or ``"reused"`` (the same training found finished in another folder)."""

    folder: Path
    summary: dict
    status: str
    spec: dict = field(repr=False, default_factory=dict)


def initial_model(model: str, seed: int, flow: FlowInit | None = None) -> nn.Module:
    """Model configuration ``model`` as a run starts it: the RNG seeded with ``seed`` first (everything
    random is seeded before it is created), SpyNet's pretrained weights loaded where ``flow`` has them."""
    torch.manual_seed(seed)
    return build_model(model, **(flow.overrides if flow is not None else {}))


def run_preset(preset: Preset, out: str | Path, options: RunOptions | None = None, *, resume: bool | None = None,
               search: str | Path | None = None, evaluate=None) -> RunResult:
    """Train ``preset`` as it is with ``options`` into the run folder ``out`` (:func:`mgvsr.runs.decide`).

    ``resume``: None resumes an unfinished run of the same spec from its ``last.pth`` when there is
    one; True requires one; False refuses a folder holding a checkpoint.  ``search``: a folder of runs
    where a finished run of the same training is reused instead of training (``mgvsr reproduce``).
    ``evaluate``: the trainer's evaluation function (default: the benchmark's protocol).  A folder
    another process is training in is refused at once (:class:`mgvsr.runs.RunFolderBusy`).
    """
    options = options or RunOptions()
    out = Path(out)
    setup = run_setup(preset, options)
    for claim in (False, True):  # what the folder needs; then, to train, the same decision under its lock
        decision = decided_by_rank0(lambda: runs.decide(out, setup.spec, search=search, resume=resume, claim=claim))
        decision.check()
        if decision.kind == "finished":
            return RunResult(out, runs.finished_summary(out), "finished", setup.spec)
        if decision.kind == "reuse":
            options.say(f"{preset.name}: the same training as {runs.relative_name(decision.folder, search)}, reused")
            return RunResult(decision.folder, runs.finished_summary(decision.folder), "reused", setup.spec)
        if not claim:  # a frame store made from a tree changed since is refused before the folder is touched
            verify_store(preset.dataset, options.root, options.store)
    try:
        summary = _train(setup, out, decision.kind == "resume", evaluate)
    finally:
        if decision.lock is not None:
            decision.lock.release()
    return RunResult(out, summary, "resumed" if decision.kind == "resume" else "trained", setup.spec)


def _train(setup: RunSetup, out: Path, resume: bool, evaluate) -> dict:
    preset, options, plan = setup.preset, setup.options, setup.preset.plan
    if rank_world()[0] == 0:
        runs.write_spec(out, setup.spec)
    options.say(f"{preset.name}: {'resuming' if resume else 'training'} {preset.model} on {preset.dataset}, "
                f"{plan.total_iterations:,} iterations, stages {' '.join(s.label for s in plan.stages)}, "
                f"batch {plan.stages[0].batch}")
    if setup.flow.spec is not None:
        options.say(f"{preset.name}: {setup.flow.describe()}")
    net = initial_model(preset.model, setup.cfg.seed, setup.flow)
    train, test = open_sources(preset.dataset, options.root, preset.test_dataset, store=options.store)
    return Trainer(net, plan, train, out, setup.cfg, test=test, evaluate=evaluate).run(resume=resume)
