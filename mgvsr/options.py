"""Two values that say how a run is computed, apart from its preset (model, data, plan, recipe).

- :class:`RunOptions`: how a run is *executed* — data root, device, seed, micro-batches, precision,
  SpyNet weights, frame store, loader workers, evaluation and checkpoint intervals, progress,
  messages, TensorBoard.  ``mgvsr train``, ``mgvsr reproduce``, ``mgvsr demo``, the dry run and the
  notebooks build one and hand it to :func:`mgvsr.launch.run_preset`.
- :class:`TrainConfig`: what the :class:`~mgvsr.train.Trainer` is told: the options that reach the
  training loop plus the preset's warm start and the loss.  Its fields are the ``config`` of a run
  log's ``start`` record.

Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

# What a run reads its frames from (``RunOptions.store``; :func:`mgvsr.data.datasets.open_dataset`):
# None = the frame store under the root when there is one, else the image files; True = the store under
# the root (it must exist); False = the image files; a path = the store there.
StoreChoice = str | Path | bool | None


@dataclass(frozen=True)
class RunOptions:
    """How a run is executed (none of it is the preset's; see the module docstring).

    - ``root``: the dataset root (REDS, Vimeo-90K; None for the embedded sample clips);
    - ``device``: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda:1"`` ...;
    - ``seed``: seeds the initial weights, the windows drawn and their augmentation;
    - ``micro_batch``: samples per forward/backward (gradient accumulation); None: the whole
      per-process minibatch at once;
    - ``amp``: mixed precision (:func:`mgvsr.device.resolve_precision`);
    - ``spynet``: pretrained SpyNet weights (a path), ``"none"`` (opted out on purpose) or a
      :class:`mgvsr.models.FlowInit`, for the models whose recipe wants them;
    - ``store``: the frame store (:data:`StoreChoice`);
    - ``workers``: data-loader worker processes per device (None: the device's default,
      :func:`mgvsr.device.default_workers`);
    - ``eval_every``, ``checkpoint_every``: evaluate / write ``last.pth`` every so many iterations
      (0: at the end / at stage ends only);
    - ``progress``: progress bars; ``log``: a function told what happens (None: silent);
    - ``tensorboard``: also log to the run folder's ``tensorboard/``.
    """

    root: str | Path | None = None
    device: str = "auto"
    seed: int = 0
    micro_batch: int | None = None
    amp: bool = False
    spynet: object = None
    store: StoreChoice = None
    workers: int | None = None
    eval_every: int = 0
    checkpoint_every: int = 0
    progress: bool = True
    log: Callable[[str], None] | None = field(default=None, compare=False)
    tensorboard: bool = False

    def replace(self, **changes) -> RunOptions:
        """These options with ``changes``."""
        return replace(self, **changes)

    def say(self, message: str) -> None:
        """Tell ``log`` (when there is one)."""
        if self.log is not None:
            self.log(message)


@dataclass
class TrainConfig:
    """Everything about a run that is not the plan, the model or the data.

    - ``micro_batch``: samples per forward/backward (gradient accumulation); None = the
      whole per-process batch at once.
    - ``frozen_iters`` / ``frozen``: the recipe's warm start (:data:`mgvsr.models.protocol.WARM_STARTS`):
      ``frozen="flow"`` keeps the flow network fixed for the first ``frozen_iters`` steps
      (BasicVSR); ``frozen="fusion-only"`` trains only the fusion module for them (EDVR's TSA recipe).
    - ``flow_lr_mult``: the flow network's LR multiplier once it trains (BasicVSR: 0.125).
    - ``eval_every``: evaluate on the test clips every so many iterations (and always at
      the end); 0 = only at the end.  ``checkpoint_every``: likewise for ``last.pth``
      (always at stage ends).
    - ``tensorboard``: also log to ``out/tensorboard`` (:mod:`mgvsr.watch`; needs the
      ``tensorboard`` package).
    - ``channels_last``: train in the ``channels_last`` memory format (weights, activations,
      gradients, optimizer state); None (default) where the model declares it faster for the
      device and precision (:func:`mgvsr.models.protocol.prefers_channels_last`).  The numbers
      are the same up to float rounding; checkpoints load either way.
    - ``amp``: mixed precision: bfloat16 autocast where the device computes bfloat16 natively,
      float16 with loss scaling on CUDA devices without it, fp32 on a CPU without it
      (:func:`mgvsr.device.resolve_precision`; the run log's ``start`` record names the choice).
      Parameters, the loss, the optimizer state and the evaluations stay in fp32.
    - ``loss_eps``: Charbonnier's eps (BasicSR's 1e-12: an L1 loss away from zero).
    - ``ema_decay``: keep an exponential moving average of the weights, updated after every optimizer
      step as BasicSR's ``model_ema`` (:class:`mgvsr.callbacks.WeightEMA`); evaluations score it and
      ``final.pth`` holds it as ``params_ema``.  None: no average (the preset's ``ema_decay``).
    """

    seed: int = 0
    device: str = "auto"
    micro_batch: int | None = None
    frozen_iters: int = 0
    frozen: str = "flow"
    flow_lr_mult: float = 1.0
    betas: tuple[float, float] = (0.9, 0.99)
    eval_every: int = 0
    checkpoint_every: int = 0
    num_workers: int = 0
    amp: bool = False
    loss_eps: float = 1e-12
    channels_last: bool | None = None  # None: where the model measured faster (protocol.prefers_channels_last)
    augment: bool = True
    reverse: bool = False
    progress: bool = True
    eval_channel: str | None = None  # None: the benchmark's protocol (RGB for REDS4, Y for Vid4 ...)
    tensorboard: bool = False
    ema_decay: float | None = None
    cudnn_benchmark: bool = True  # CUDA: cuDNN picks the fastest convolution per shape (a plan has a few shapes)
    extra: dict = field(default_factory=dict)  # free-form, kept in the log (preset name, ...)
