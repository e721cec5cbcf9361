"""The side outputs of a run, each a :class:`Callback` of the :class:`~mgvsr.train.Trainer`'s loop.

The loop (:meth:`mgvsr.train.Trainer.run`) trains; everything else it does is a callback, called in
list order at each point of a run:

==================  ==========================================================================
``on_start``        the run starts (fresh, or resumed from a checkpoint)
``on_step``         an optimizer step is done (its record: the run log's ``step`` fields)
``on_eval``         an evaluation is done (its record: the run log's ``eval`` fields)
``on_stage_end``    the last step of a stage is done
``on_step_end``     everything of the step is done (checkpoints and stop signals come here)
``on_train_end``    the last step is done, before the final evaluation
``on_end``          the run is finished (its summary: the run log's ``end`` record)
``close``           always, last (also after an error)
``on_save``         a checkpoint (``last.pth``) is being written: the callback adds what it must keep
``on_load``         a checkpoint is being read to resume: the callback restores what it kept
``on_final``        ``final.pth`` is being written: the callback adds its weights
==================  ==========================================================================

:func:`default_callbacks` gives a run its callbacks from its :class:`~mgvsr.options.TrainConfig`:
the JSON-lines log (:class:`RunLogWriter`), TensorBoard (:class:`TensorBoardWriter`), the progress
bar (:class:`ProgressBar`), evaluations every N iterations (:class:`PeriodicEvaluation`),
checkpoints (:class:`Checkpoints`) and preemption (:class:`Preemption`); and, where the recipe has one,
the exponential moving average of the weights that the evaluations score (:class:`WeightEMA`).
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from tqdm.auto import tqdm

from mgvsr import runs
from mgvsr.errors import MgvsrError, Preempted
from mgvsr.models.protocol import unwrap
from mgvsr.options import TrainConfig
from mgvsr.preemption import StopSignals, signal_name
from mgvsr.watch import TensorBoardLog

class Callback:
    """A side output of the training loop; every hook does nothing unless overridden.  ``trainer`` is the
    :class:`~mgvsr.train.Trainer` calling it (its ``it``, ``plan``, ``times``, ``log``, ``out`` ...)."""

    def on_start(self, trainer) -> None: ...

    def on_step(self, trainer, record: dict) -> None: ...

    def on_eval(self, trainer, record: dict) -> None: ...

    def on_stage_end(self, trainer, stage: int) -> None: ...

    def on_step_end(self, trainer) -> None: ...

    def on_train_end(self, trainer) -> None: ...

    def on_end(self, trainer, summary: dict) -> None: ...

    def close(self, trainer) -> None: ...

    def on_save(self, trainer, state: dict) -> None: ...

    def on_load(self, trainer, state: dict) -> None: ...

    def on_final(self, trainer, weights: dict) -> None: ...


class WeightEMA(Callback):
    """An exponential moving average of the weights, as BasicSR's ``model_ema`` (``ema_decay: 0.999`` in its
    BasicVSR++ recipe): it starts as a copy of the initial model, and after every optimizer step each
    parameter's average becomes ``decay * average + (1 - decay) * parameter`` (buffers keep their initial
    values, as BasicSR's).  The trainer's evaluations score the average (``trainer.scored``); checkpoints keep
    it (``params_ema``), so a resumed run continues it exactly; ``final.pth`` holds it as ``params_ema`` beside
    ``params`` (BasicSR's layout: :func:`mgvsr.models.checkpoints.load_pretrained` with ``key="params_ema"``
    or ``"auto"`` reads it).  Kept by the main process only (the one that evaluates and writes the files)."""

    KEY = "params_ema"

    def __init__(self, decay: float) -> None:
        if not 0 < decay < 1:
            raise MgvsrError(f"the EMA's decay must be in (0, 1), got {decay!r}")
        self.decay = decay
        self.average: torch.nn.Module | None = None

    def _start_from(self, trainer, state: dict | None = None) -> None:
        self.average = copy.deepcopy(unwrap(trainer.model)).eval().requires_grad_(False)
        if state is not None:
            self.average.load_state_dict(state)
        trainer.scored = self.average

    def on_load(self, trainer, state: dict) -> None:
        if not trainer.is_main:
            return
        if self.KEY not in state:
            raise MgvsrError(f"cannot resume with an EMA of the weights (decay {self.decay:g}): the checkpoint at "
                             f"iteration {state.get('iteration')} holds none (it was written by a run without one)")
        self._start_from(trainer, state[self.KEY])

    def on_start(self, trainer) -> None:
        if trainer.is_main and self.average is None:
            self._start_from(trainer)  # BasicSR's model_ema(0): the initial weights

    @torch.no_grad()
    def on_step(self, trainer, record: dict) -> None:
        if self.average is None:
            return
        weights = dict(unwrap(trainer.model).named_parameters())
        for name, average in self.average.named_parameters():
            average.mul_(self.decay).add_(weights[name], alpha=1 - self.decay)

    def on_save(self, trainer, state: dict) -> None:
        if self.average is not None:
            state[self.KEY] = self.average.state_dict()

    def on_final(self, trainer, weights: dict) -> None:
        if self.average is not None:
            weights[self.KEY] = self.average.state_dict()


class RunLogWriter(Callback):
    """``log.jsonl`` (:class:`mgvsr.runs.RunLog`, main process only): a ``start`` record (a fresh log) or,
    on resume, the log cut back to the checkpoint and a ``resume`` record; then the ``step``, ``eval``,
    ``stage_end`` and ``end`` records."""

    def on_start(self, trainer) -> None:
        if trainer.resumed is None:
            trainer.log.clear()
            trainer.log.write(event="start", **trainer.start_record())
        else:
            trainer.log.truncate_after(trainer.it)
            trainer.log.write(event="resume", it=trainer.it, **trainer.resumed)

    def on_step(self, trainer, record: dict) -> None:
        trainer.log.write(event="step", **record)

    def on_eval(self, trainer, record: dict) -> None:
        trainer.log.write(event="eval", **record)

    def on_stage_end(self, trainer, stage: int) -> None:
        trainer.log.write(event="stage_end", it=trainer.it, stage=stage,
                          compute=trainer.times.stage_compute[stage], data=trainer.times.stage_data[stage])

    def on_end(self, trainer, summary: dict) -> None:
        trainer.log.write(event="end", **summary)


class TensorBoardWriter(Callback):
    """The run's scalars in ``<run>/tensorboard`` (:mod:`mgvsr.watch`), written by the main process."""

    def __init__(self) -> None:
        self.board: TensorBoardLog | None = None

    def on_start(self, trainer) -> None:
        if trainer.is_main:
            self.board = TensorBoardLog(Path(trainer.out) / runs.TENSORBOARD, done=trainer.it, world=trainer.world)

    def on_step(self, trainer, record: dict) -> None:
        if self.board is not None:
            self.board.step(record)

    def on_eval(self, trainer, record: dict) -> None:
        if self.board is not None:
            self.board.evaluation(record["it"], record["psnr"], record["ssim"])

    def close(self, trainer) -> None:
        if self.board is not None:
            self.board.close()
            self.board = None


class ProgressBar(Callback):
    """A tqdm bar over the plan's iterations (main process), the stage and the loss beside it."""

    def __init__(self) -> None:
        self.bar = None

    def on_start(self, trainer) -> None:
        if trainer.is_main and trainer.cfg.amp:
            tqdm.write(trainer.precision_note)
        self.bar = tqdm(total=trainer.plan.total_iterations, initial=trainer.it, desc=f"training ({trainer.precision})",
                        unit="it", disable=not trainer.is_main, dynamic_ncols=True)

    def on_step(self, trainer, record: dict) -> None:
        stage = trainer.plan.stages[record["stage"]]
        self.bar.update(1)
        self.bar.set_postfix(stage=f"{record['stage'] + 1}/{len(trainer.plan)} {stage.label}",
                             loss=f"{record['loss']:.4f}", refresh=False)

    def on_train_end(self, trainer) -> None:
        self.close(trainer)

    def close(self, trainer) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class PeriodicEvaluation(Callback):
    """An evaluation every ``every`` iterations before the last (the trainer always evaluates at the end)."""

    def __init__(self, every: int) -> None:
        self.every = every

    def on_step(self, trainer, record: dict) -> None:
        if trainer.it % self.every == 0 and trainer.it < trainer.plan.total_iterations:
            trainer.evaluate()


class Checkpoints(Callback):
    """``last.pth`` at every stage end and every ``every`` iterations (0: at stage ends only)."""

    def __init__(self, every: int = 0) -> None:
        self.every = every
        self.stage_ended = False

    def on_stage_end(self, trainer, stage: int) -> None:
        self.stage_ended = True

    def on_step_end(self, trainer) -> None:
        if self.stage_ended or (self.every and trainer.it % self.every == 0):
            trainer.save()
        self.stage_ended = False


class Preemption(Callback):
    """``SIGTERM``/``SIGUSR1`` stop the run after the current step, in every process alike
    (:mod:`mgvsr.preemption`): the state after that step is checkpointed, a ``preempted`` record
    logged, and :class:`~mgvsr.errors.Preempted` raised."""

    def __init__(self) -> None:
        self.signals: StopSignals | None = None

    def on_start(self, trainer) -> None:
        self.signals = StopSignals(trainer.device)
        self.signals.install()

    def on_step_end(self, trainer) -> None:
        signum = self.signals.agreed(trainer.world)  # every process stops after the same step
        if not signum:
            return
        if trainer.saved_at != trainer.it:
            trainer.save()
        name = signal_name(signum)
        trainer.log.write(event="preempted", it=trainer.it, signal=name, checkpoint=runs.CHECKPOINT)
        raise Preempted(f"stopped by {name} after iteration {trainer.it} of {trainer.plan.total_iterations}: "
                        f"checkpoint written to {Path(trainer.out) / runs.CHECKPOINT}; continue with --resume",
                        signal=name, iteration=trainer.it)

    def on_train_end(self, trainer) -> None:
        self.close(trainer)

    def close(self, trainer) -> None:
        if self.signals is not None:
            self.signals.restore()
            self.signals = None


def default_callbacks(cfg: TrainConfig) -> list[Callback]:
    """A run's callbacks from its configuration, in the order they are called (the EMA first: a step's
    evaluation scores the average that step updated)."""
    callbacks: list[Callback] = [WeightEMA(cfg.ema_decay)] if cfg.ema_decay is not None else []
    callbacks.append(RunLogWriter())
    if cfg.tensorboard:
        callbacks.append(TensorBoardWriter())
    if cfg.progress:
        callbacks.append(ProgressBar())
    if cfg.eval_every:
        callbacks.append(PeriodicEvaluation(cfg.eval_every))
    callbacks += [Checkpoints(cfg.checkpoint_every), Preemption()]
    return callbacks
