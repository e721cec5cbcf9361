"""The training plan: which shape to train on when, and at what learning rate.

A :class:`Plan` is an ordered tuple of :class:`Stage` s.  Each stage fixes the minibatch
shape (LR patch side ``patch`` = S, clip length ``frames`` = T, minibatch size ``batch``)
for ``iterations`` optimizer steps, and starts its cosine at ``lr``.  The plan is a small
value object free of torch: the trainer, the notebook widgets, the figures and the tests
all read the same one, and nothing else decides a shape or a learning rate.

In any training loop::

    plan = multigrid(75_000, patch=64, frames=15, batch=64, lr=8e-4, warmup=goyal_warmup(4))
    for it in range(plan.total_iterations):
        index, stage = plan.at(it)        # crop (stage.batch, stage.frames, 3, stage.patch, stage.patch)
        for group in optimizer.param_groups:
            group["lr"] = plan.lr(it)     # times a per-group multiplier, e.g. SpyNet's 0.125
        ...

Conventions
-----------
- Iterations are optimizer steps, counted from 0: step ``it`` (0 <= it < total) uses
  ``plan.lr(it)`` and the shape of ``plan.at(it).stage``.  ``plan.lr(total)`` is also
  defined (the end point of the last stage, where the LR reaches ``eta_min``).
- ``batch`` is samples per optimizer step.  A trainer may split a step into micro-batches
  and accumulate gradients; the plan does not care.
- ``patch`` is in LR pixels; the GT window is ``4 * patch`` for the x4 models.

Eq. 1 (the dynamic LR scheduler), as docs/paper-reading.md reads it
--------------------------------------------------------------------
Inside stage j (first iteration ``start_j``, starting LR ``eta_j``)::

    lr(it) = eta_min + (eta_j - eta_min) * 0.5 * (1 + cos(pi * (it - start_j) / D_j))

    D_j = I_total  for the stages j < p   (the LR never decays to zero before the last stage)
    D_p = P_p      for the last stage     (it decays fully, reaching eta_min at its end)

Each stage may carry an explicit ``period`` instead (the restarts of BasicSR's
``CosineAnnealingRestartLR``: period = the stage's own length); ``period=None`` asks
:class:`Plan` for the Eq. 1 value above.  A period shorter than its stage is refused (the
cosine would climb again mid-stage).  The equation as printed in the paper is garbled;
:func:`eq1_as_printed` computes it so the two can be compared.

Warmup (Goyal et al.) multiplies the scheduled LR by a factor ``w(it)`` for the first
``N = warmup.iterations`` steps, like ``torch.optim.lr_scheduler.LinearLR``::

    linear:   w(it) = s + (1 - s) * it / N      for it < N, then 1
    constant: w(it) = s                         for it < N, then 1

with ``s = warmup.start_factor``; :func:`goyal_warmup` sets ``s = 1/m`` for a minibatch m
times the baseline's, so the warmup starts at the baseline's (unscaled) LR and reaches the
scaled LR after N steps.  (The cosine decays a little meanwhile: its period is I_total.)

Stage lengths
-------------
When a builder splits ``iterations`` into ``p`` stages that do not divide evenly, the first
``iterations % p`` stages get one iteration more (:func:`split_evenly`).

Linear scaling rule (Sec. 3.2)
------------------------------
Minibatch x m -> LR x m, iterations / m (the same number of samples).  Use
:func:`linear_scaling` for the numbers, or :func:`scale_batch` to transform a whole plan.
"""

from __future__ import annotations

import bisect
import math
import numbers
import operator
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple, Sequence

from mgvsr.errors import PlanError

ETA_MIN = 1e-7  # the baseline configs' eta_min (BasicSR CosineAnnealingRestartLR)
WARMUP_KINDS = ("linear", "constant")
COMBINE_MODES = ("hierarchical", "synchronous")
CYCLES = ("both", "spatial", "temporal")


def _positive_int(value: Any, what: str) -> int:
    """``value`` as an int if it is a positive integer (bool refused), else PlanError."""
    if isinstance(value, bool):
        raise PlanError(f"{what} must be a positive integer, got {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise PlanError(f"{what} must be a positive integer, got {value!r}") from None
    if number <= 0:
        raise PlanError(f"{what} must be a positive integer, got {number}")
    return number


def _positive_float(value: Any, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PlanError(f"{what} must be a positive number, got {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise PlanError(f"{what} must be a positive number, got {value!r}")
    return number


# --------------------------------------------------------------------------------------
# Stage and warmup
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    """One stage of a plan: a fixed minibatch shape for ``iterations`` optimizer steps.

    Training samples of this stage are LR windows of shape ``(batch, frames, 3, patch, patch)``
    with GT windows ``(batch, frames, 3, 4 * patch, 4 * patch)``.

    ``lr`` is the stage's starting LR (eta_j of Eq. 1).  ``period`` (D_j) and ``start``
    (first iteration) are filled in by :class:`Plan` when left as None.
    """

    iterations: int
    patch: int
    frames: int
    batch: int
    lr: float
    period: int | None = None
    start: int | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "iterations", _positive_int(self.iterations, "stage iterations"))
        set_(self, "patch", _positive_int(self.patch, "stage patch (LR pixels)"))
        set_(self, "batch", _positive_int(self.batch, "stage batch (samples per step)"))
        set_(self, "lr", _positive_float(self.lr, "stage lr"))
        frames = _positive_int(self.frames, "stage frames")
        if frames < 2:
            raise PlanError(f"stage frames must be at least 2 (a video model needs neighbours), got {frames}")
        set_(self, "frames", frames)
        if self.period is not None:
            period = _positive_int(self.period, "stage period")
            if period < self.iterations:
                raise PlanError(
                    f"stage period {period} is shorter than the stage's {self.iterations} iterations "
                    "(the cosine would climb again mid-stage)"
                )
            set_(self, "period", period)
        if self.start is not None:
            if isinstance(self.start, bool) or operator.index(self.start) < 0:
                raise PlanError(f"stage start must be a non-negative integer, got {self.start!r}")
            set_(self, "start", operator.index(self.start))

    @property
    def end(self) -> int:
        """One past the stage's last iteration (the next stage's start)."""
        if self.start is None:
            raise PlanError("this stage is not part of a Plan yet: its start is unknown")
        return self.start + self.iterations

    @property
    def samples(self) -> int:
        return self.iterations * self.batch

    @property
    def label(self) -> str:
        """The paper's notation: ``"32&7"`` for a 32x32 LR patch and 7 frames."""
        return f"{self.patch}&{self.frames}"

    def to_dict(self) -> dict:
        return dict(iterations=self.iterations, patch=self.patch, frames=self.frames,
                    batch=self.batch, lr=self.lr, period=self.period, start=self.start)


@dataclass(frozen=True)
class Warmup:
    """Warmup over the first ``iterations`` steps: the LR is multiplied by ``factor(it)``.

    ``kind="linear"``: ``start_factor + (1 - start_factor) * it / iterations``;
    ``kind="constant"``: ``start_factor``; both 1 from ``it >= iterations`` on.
    """

    kind: str
    iterations: int
    start_factor: float

    def __post_init__(self) -> None:
        if self.kind not in WARMUP_KINDS:
            raise PlanError(f"warmup kind must be one of {', '.join(WARMUP_KINDS)}, got {self.kind!r}")
        object.__setattr__(self, "iterations", _positive_int(self.iterations, "warmup iterations"))
        factor = _positive_float(self.start_factor, "warmup start_factor")
        if factor > 1:
            raise PlanError(f"warmup start_factor must be in (0, 1], got {factor}")
        object.__setattr__(self, "start_factor", factor)

    def factor(self, it: float) -> float:
        if it >= self.iterations:
            return 1.0
        if self.kind == "constant":
            return self.start_factor
        return self.start_factor + (1.0 - self.start_factor) * it / self.iterations

    def to_dict(self) -> dict:
        return dict(kind=self.kind, iterations=self.iterations, start_factor=self.start_factor)


def goyal_warmup(m: float, iterations: int = 5_000, kind: str = "linear") -> Warmup:
    """Warmup for a minibatch ``m`` times the baseline's: from LR/m (the baseline's) to LR.

    The paper warms up linearly over the first 5,000 iterations; Table 5 also tries
    ``kind="constant"`` (LR/m for 5,000 iterations, then the scaled LR).
    """
    m = _positive_float(m, "batch multiplier m")
    if m <= 1:
        raise PlanError(f"warmup from LR/m needs a batch multiplier m > 1, got {m}")
    return Warmup(kind, iterations, 1.0 / m)


class StageAt(NamedTuple):
    """What :meth:`Plan.at` returns: ``index, stage = plan.at(it)``."""

    index: int
    stage: Stage


def cosine(lr_start: float, eta_min: float, t: float, period: float) -> float:
    """``eta_min + (lr_start - eta_min) * 0.5 * (1 + cos(pi * t / period))``."""
    return eta_min + (lr_start - eta_min) * 0.5 * (1.0 + math.cos(math.pi * t / period))


# --------------------------------------------------------------------------------------
# Plan
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """An ordered tuple of stages with an LR schedule (Eq. 1, optional warmup).

    Stage ``start`` s are stamped in order from 0 (a given start must agree); stage
    ``period`` s left as None get Eq. 1's: the total for every stage but the last, the
    last stage's own length for the last.
    """

    stages: tuple[Stage, ...]
    eta_min: float = ETA_MIN
    warmup: Warmup | None = None
    name: str = ""
    description: str = ""
    _starts: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        stages = tuple(self.stages)
        if not stages:
            raise PlanError("a plan needs at least one stage, got none")
        for j, stage in enumerate(stages):
            if not isinstance(stage, Stage):
                raise PlanError(f"stage {j + 1} must be a Stage, got {type(stage).__name__}")
        total = sum(s.iterations for s in stages)
        stamped, start = [], 0
        for j, stage in enumerate(stages):
            if stage.start is not None and stage.start != start:
                raise PlanError(
                    f"stage {j + 1} ({stage.label}) says it starts at iteration {stage.start}, "
                    f"but the stages before it end at {start}"
                )
            last = j == len(stages) - 1
            period = stage.period if stage.period is not None else (stage.iterations if last else total)
            stamped.append(replace(stage, start=start, period=period))
            start += stage.iterations
        object.__setattr__(self, "stages", tuple(stamped))
        object.__setattr__(self, "_starts", tuple(s.start for s in stamped))

        try:
            eta_min = float(self.eta_min)
        except (TypeError, ValueError):
            raise PlanError(f"eta_min must be a number >= 0, got {self.eta_min!r}") from None
        if not math.isfinite(eta_min) or eta_min < 0:
            raise PlanError(f"eta_min must be a number >= 0, got {self.eta_min!r}")
        object.__setattr__(self, "eta_min", eta_min)
        for j, stage in enumerate(stamped):
            if stage.lr <= eta_min:
                raise PlanError(
                    f"stage {j + 1} ({stage.label}) starts at lr {stage.lr:g}, "
                    f"not above eta_min {eta_min:g}"
                )
        if self.warmup is not None:
            if not isinstance(self.warmup, Warmup):
                raise PlanError(f"warmup must be a Warmup or None, got {self.warmup!r}")
            if self.warmup.iterations >= total:
                raise PlanError(
                    f"warmup of {self.warmup.iterations} iterations is not shorter than "
                    f"the whole plan ({total} iterations)"
                )

    # ---- shape of the plan ------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.stages)

    def __iter__(self):
        return iter(self.stages)

    @property
    def total_iterations(self) -> int:
        return self.stages[-1].end

    @property
    def starts(self) -> tuple[int, ...]:
        """The first iteration of every stage: ``(0, P_1, P_1 + P_2, ...)``."""
        return self._starts

    @property
    def boundaries(self) -> tuple[int, ...]:
        """Stage edges, ``p + 1`` values: ``(0, P_1, P_1 + P_2, ..., I_total)``."""
        return self._starts + (self.total_iterations,)

    @property
    def samples(self) -> int:
        """Training samples seen: ``sum(iterations * batch)``."""
        return sum(s.samples for s in self.stages)

    @property
    def work(self) -> int:
        """LR pixels processed: ``sum(iterations * batch * frames * patch**2)``.

        A rough proxy for compute (it ignores per-frame overheads such as SpyNet's
        resizing of small inputs); the ratio of two plans' ``work`` is the speedup an
        ideal device would give.
        """
        return sum(s.iterations * s.batch * s.frames * s.patch**2 for s in self.stages)

    def _index(self, it: int) -> int:
        if isinstance(it, bool):
            raise PlanError(f"iteration must be an integer, got {it!r}")
        try:
            it = operator.index(it)
        except TypeError:
            raise PlanError(f"iteration must be an integer, got {it!r}") from None
        total = self.total_iterations
        if not 0 <= it <= total:
            raise PlanError(f"iteration {it} is outside this plan's 0..{total}")
        return min(bisect.bisect_right(self._starts, it) - 1, len(self.stages) - 1)

    def at(self, it: int) -> StageAt:
        """``(index, stage)`` of the stage iteration ``it`` belongs to (0-based index).

        ``it == total_iterations`` (the end point) belongs to the last stage.  O(log p).
        """
        index = self._index(it)
        return StageAt(index, self.stages[index])

    # ---- learning rate -------------------------------------------------------------------

    def lr(self, it: int) -> float:
        """The LR of optimizer step ``it``: Eq. 1 times the warmup factor.  O(log p)."""
        stage = self.stages[self._index(it)]
        value = cosine(stage.lr, self.eta_min, it - stage.start, stage.period)
        if self.warmup is not None:
            value *= self.warmup.factor(it)
        return value

    def lrs(self, iterations):
        """Vectorised :meth:`lr` over an array of iterations (fractional ones allowed).

        Returns a float64 numpy array of the same shape.
        """
        import numpy as np

        its = np.asarray(iterations, dtype=np.float64)
        total = self.total_iterations
        if its.size and (np.isnan(its).any() or its.min() < 0 or its.max() > total):
            raise PlanError(f"iterations must lie in this plan's 0..{total}")
        index = np.clip(np.searchsorted(self._starts, its, side="right") - 1, 0, len(self.stages) - 1)
        lr0 = np.array([s.lr for s in self.stages])[index]
        start = np.array(self._starts, dtype=np.float64)[index]
        period = np.array([s.period for s in self.stages], dtype=np.float64)[index]
        out = self.eta_min + (lr0 - self.eta_min) * 0.5 * (1.0 + np.cos(np.pi * (its - start) / period))
        if self.warmup is not None:
            w = self.warmup
            if w.kind == "constant":
                factor = np.full_like(its, w.start_factor)
            else:
                factor = w.start_factor + (1.0 - w.start_factor) * its / w.iterations
            out = out * np.where(its < w.iterations, factor, 1.0)
        return out

    # ---- checks against data and model ---------------------------------------------------

    def check_fits(
        self,
        *,
        max_frames: int | None = None,
        min_lq_size: tuple[int, int] | None = None,
        model_min_patch: int | None = None,
        model_frames: int | None = None,
        patch_multiple: int | None = None,
    ) -> None:
        """Refuse, before the first iteration, a plan its data or model cannot run.

        - ``max_frames``: frames of the shortest training clip (a stage needs ``frames``
          consecutive ones; a Vimeo-90K loader that mirrors its 7 frames reports 14).
        - ``min_lq_size``: ``(h, w)`` of the smallest LQ frame; the LR patch must fit.
        - ``model_min_patch``: the smallest LR patch the model takes.
        - ``model_frames``: a sliding-window model's fixed input length (EDVR-M: 5).
        - ``patch_multiple``: the LR patch must be a multiple of it (EDVR's pyramid: 4).

        Raises PlanError listing every stage that does not fit, with its value.
        """
        problems = []
        for j, s in enumerate(self.stages):
            where = f"stage {j + 1} ({s.label})"
            if max_frames is not None and s.frames > max_frames:
                problems.append(f"{where} needs {s.frames} frames, but the shortest clip has {max_frames}")
            if min_lq_size is not None and s.patch > min(min_lq_size):
                h, w = min_lq_size
                problems.append(f"{where}: LR patch {s.patch} is larger than the smallest LQ frame ({h}x{w})")
            if model_min_patch is not None and s.patch < model_min_patch:
                problems.append(f"{where}: LR patch {s.patch} is smaller than the model takes ({model_min_patch})")
            if model_frames is not None and s.frames != model_frames:
                problems.append(f"{where}: {s.frames} frames, but the model takes exactly {model_frames}")
            if patch_multiple is not None and s.patch % patch_multiple:
                problems.append(f"{where}: LR patch {s.patch} is not a multiple of {patch_multiple}")
        if problems:
            name = f"plan {self.name!r}" if self.name else "the plan"
            raise PlanError(f"{name} does not fit: " + "; ".join(problems))

    # ---- conversions ---------------------------------------------------------------------

    def with_name(self, name: str, description: str | None = None) -> Plan:
        return replace(self, name=name, description=self.description if description is None else description)

    def to_dict(self) -> dict:
        return dict(
            name=self.name,
            description=self.description,
            total_iterations=self.total_iterations,
            eta_min=self.eta_min,
            warmup=None if self.warmup is None else self.warmup.to_dict(),
            stages=[s.to_dict() for s in self.stages],
        )

    @classmethod
    def from_dict(cls, data: dict) -> Plan:
        """Inverse of :meth:`to_dict` (``total_iterations`` is checked, not trusted)."""
        try:
            stages = tuple(Stage(**{k: s[k] for k in ("iterations", "patch", "frames", "batch", "lr")},
                                 period=s.get("period"), start=s.get("start"))
                           for s in data["stages"])
            warmup = None if data.get("warmup") is None else Warmup(**data["warmup"])
        except (KeyError, TypeError) as exc:
            raise PlanError(f"not a plan dictionary (missing or wrong key: {exc})") from None
        plan = cls(stages, eta_min=data.get("eta_min", ETA_MIN), warmup=warmup,
                   name=data.get("name", ""), description=data.get("description", ""))
        if "total_iterations" in data and data["total_iterations"] != plan.total_iterations:
            raise PlanError(
                f"plan dictionary says total_iterations={data['total_iterations']}, "
                f"but its stages add up to {plan.total_iterations}"
            )
        return plan

    def table(self, scale: int = 4) -> str:
        """A text table of the stages (LR patch with its GT size at ``scale``)."""
        head = ("stage", "iterations", "from", "to", f"patch (GT x{scale})", "frames", "batch",
                "lr start", "lr end", "period")
        rows = []
        for j, s in enumerate(self.stages):
            lr_end = cosine(s.lr, self.eta_min, s.iterations, s.period)
            rows.append((str(j + 1), f"{s.iterations:,}", f"{s.start:,}", f"{s.end:,}",
                         f"{s.patch} ({s.patch * scale})", str(s.frames), str(s.batch),
                         f"{s.lr:.2e}", f"{lr_end:.2e}", f"{s.period:,}"))
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
        lines = ["  ".join(h.rjust(w) for h, w in zip(head, widths))]
        lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
        foot = (f"total {self.total_iterations:,} iterations, {self.samples:,} samples; "
                f"eta_min {self.eta_min:g}; ")
        if self.warmup is None:
            foot += "no warmup"
        else:
            w = self.warmup
            foot += f"{w.kind} warmup over {w.iterations:,} iterations from x{w.start_factor:.3g}"
        return "\n".join(lines + [foot])


# --------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------


def split_evenly(total: int, parts: int) -> list[int]:
    """``total`` iterations into ``parts`` stages within 1 of each other; the first
    ``total % parts`` stages get the extra iteration.  ``split_evenly(10, 3) == [4, 3, 3]``."""
    total = _positive_int(total, "iterations")
    parts = _positive_int(parts, "number of stages")
    if total < parts:
        raise PlanError(f"{total} iterations cannot be split into {parts} stages of at least one iteration")
    q, r = divmod(total, parts)
    return [q + 1 if j < r else q for j in range(parts)]


def baseline(
    iterations: int,
    patch: int,
    frames: int,
    batch: int,
    lr: float,
    *,
    eta_min: float = ETA_MIN,
    warmup: Warmup | None = None,
    periods: Sequence[int] | None = None,
    name: str = "",
    description: str = "",
) -> Plan:
    """The usual recipe: one fixed shape, cosine annealing from ``lr`` to ``eta_min``.

    ``periods`` (summing to ``iterations``) gives cosine restarts instead, as BasicSR's
    ``CosineAnnealingRestartLR``: one stage per period, all of the same shape, each
    decaying fully over its own length.
    """
    if periods is None:
        stages = (Stage(iterations, patch, frames, batch, lr),)
    else:
        periods = [_positive_int(p, "restart period") for p in periods]
        if sum(periods) != iterations:
            raise PlanError(f"restart periods {periods} add up to {sum(periods)}, not the {iterations} iterations")
        stages = tuple(Stage(p, patch, frames, batch, lr, period=p) for p in periods)
    return Plan(stages, eta_min=eta_min, warmup=warmup, name=name, description=description)


def default_spatial_sizes(patch: int, min_patch: int = 32) -> tuple[int, ...]:
    """The paper's spatial cycle: ``max(min_patch, H // 2)`` then ``H`` (64 -> 32, 64).

    Sizes that coincide collapse into one (``H <= min_patch`` gives no spatial cycle).
    """
    patch = _positive_int(patch, "patch")
    first = min(max(min_patch, patch // 2), patch)
    return (first, patch) if first < patch else (patch,)


def default_temporal_sizes(frames: int, min_frames: int = 6) -> tuple[int, ...]:
    """The paper's temporal cycle, ~T/2, ~3T/4, T, as equal steps of ``ceil(T / 4)``.

    ``(T - 2 * ceil(T/4), T - ceil(T/4), T)``, each raised to at least ``min_frames``
    (but not past T), duplicates dropped.  This reproduces the paper's numbers for both
    datasets: REDS T=15 -> 7, 11, 15 and Vimeo-90K T=14 -> 6, 10, 14.  (The printed rule
    ``max(6, T/2), 3T/4, T`` gives 7 rather than 6 for T=14 under any rounding; the
    equal-step rule gives what the paper actually used.)  Small T: 10 -> 6, 7, 10;
    8 -> 6, 8; T <= 6 -> T alone (no temporal cycle).
    """
    frames = _positive_int(frames, "frames")
    step = math.ceil(frames / 4)
    low = min(min_frames, frames)
    sizes = []
    for size in (frames - 2 * step, frames - step, frames):
        size = min(max(size, low), frames)
        if size not in sizes:
            sizes.append(size)
    return tuple(sizes)


def _sizes(values: Sequence[int], what: str) -> tuple[int, ...]:
    sizes = tuple(values)
    if not sizes:
        raise PlanError(f"{what} sizes must not be empty")
    return tuple(_positive_int(v, f"{what} size") for v in sizes)


def multigrid(
    iterations: int,
    patch: int,
    frames: int,
    batch: int,
    lr: float,
    *,
    cycle: str = "both",
    combine: str = "hierarchical",
    spatial: Sequence[int] | None = None,
    temporal: Sequence[int] | None = None,
    min_patch: int = 32,
    min_frames: int = 6,
    stage_lrs: Sequence[float | None] | None = None,
    extra_stages: Sequence[tuple[int, int, int]] = (),
    eta_min: float = ETA_MIN,
    warmup: Warmup | None = None,
    name: str = "",
    description: str = "",
) -> Plan:
    """The paper's multigrid plan with Eq. 1's restarting LR.

    ``patch`` and ``frames`` are the baseline's H and T (the largest sizes); ``iterations``,
    ``batch`` and ``lr`` are this run's (apply the linear scaling rule before, see
    :func:`linear_scaling`).

    - ``cycle``: ``"both"`` (default), ``"spatial"`` (frames fixed at T: EDVR-M, Multi-S)
      or ``"temporal"`` (patch fixed at H: Multi-T).  It chooses the default sizes
      (:func:`default_spatial_sizes`, :func:`default_temporal_sizes`) of the axes not given.
    - ``spatial`` / ``temporal``: explicit size lists, in training order (Tables 7-9).
    - ``combine``: ``"hierarchical"`` (a full temporal cycle inside every spatial stage,
      p = s x f: 32&7, 32&11, 32&15, 64&7, 64&11, 64&15) or ``"synchronous"`` (Table 8a:
      both change together; the two lists must have equal length and are zipped).
    - ``iterations`` is split into p equal stages (:func:`split_evenly`).
    - ``stage_lrs``: per-stage starting LR (None entries keep ``lr``), length p.  EDVR-M:
      ``[2e-4, None]``.
    - ``extra_stages``: ``(patch, frames, iterations)`` appended after the p stages with
      the same batch and LR (Table 9 (3): ``[(72, 17, 20_000)]``).  Eq. 1 then runs over
      the whole plan (I_total includes them; the last extra stage decays fully).
    """
    shapes = multigrid_shapes(patch, frames, cycle=cycle, combine=combine, spatial=spatial, temporal=temporal,
                              min_patch=min_patch, min_frames=min_frames)
    lengths = split_evenly(iterations, len(shapes))
    if stage_lrs is None:
        stage_lrs = [None] * len(shapes)
    stage_lrs = list(stage_lrs)
    if len(stage_lrs) != len(shapes):
        raise PlanError(f"stage_lrs has {len(stage_lrs)} entries, but the plan has {len(shapes)} stages "
                        f"({', '.join(f'{s}&{t}' for s, t in shapes)})")
    stages = [Stage(n, s, t, batch, lr if stage_lr is None else stage_lr)
              for n, (s, t), stage_lr in zip(lengths, shapes, stage_lrs)]
    for extra in extra_stages:
        try:
            s, t, n = extra
        except (TypeError, ValueError):
            raise PlanError(f"an extra stage is (patch, frames, iterations), got {extra!r}") from None
        stages.append(Stage(n, s, t, batch, lr))
    return Plan(tuple(stages), eta_min=eta_min, warmup=warmup, name=name, description=description)


def multigrid_shapes(patch: int, frames: int, *, cycle: str = "both", combine: str = "hierarchical",
                     spatial: Sequence[int] | None = None, temporal: Sequence[int] | None = None,
                     min_patch: int = 32, min_frames: int = 6) -> list[tuple[int, int]]:
    """The ``(patch, frames)`` of the stages of :func:`multigrid`, in training order (its arguments)."""
    if cycle not in CYCLES:
        raise PlanError(f"cycle must be one of {', '.join(CYCLES)}, got {cycle!r}")
    if combine not in COMBINE_MODES:
        raise PlanError(f"combine must be one of {', '.join(COMBINE_MODES)}, got {combine!r}")
    patch = _positive_int(patch, "patch")
    frames = _positive_int(frames, "frames")
    if spatial is None:
        spatial = default_spatial_sizes(patch, min_patch) if cycle in ("both", "spatial") else (patch,)
    spatial = _sizes(spatial, "spatial")
    if temporal is None:
        temporal = default_temporal_sizes(frames, min_frames) if cycle in ("both", "temporal") else (frames,)
    temporal = _sizes(temporal, "temporal")
    if cycle == "spatial" and len(temporal) > 1:
        raise PlanError(f"cycle='spatial' keeps the frames fixed, but temporal sizes {list(temporal)} were given")
    if cycle == "temporal" and len(spatial) > 1:
        raise PlanError(f"cycle='temporal' keeps the patch fixed, but spatial sizes {list(spatial)} were given")

    if combine == "hierarchical":
        return [(s, t) for s in spatial for t in temporal]
    if len(spatial) != len(temporal):
        raise PlanError(f"synchronous cycles need as many spatial as temporal sizes, got "
                        f"spatial {list(spatial)} and temporal {list(temporal)}")
    return list(zip(spatial, temporal))


# --------------------------------------------------------------------------------------
# Linear scaling rule
# --------------------------------------------------------------------------------------


class Scaled(NamedTuple):
    iterations: int
    lr: float
    m: float


def linear_scaling(iterations: int, lr: float, base_batch: int, batch: int) -> Scaled:
    """Minibatch ``base_batch -> batch`` (m = batch / base_batch): LR x m, iterations / m.

    ``linear_scaling(300_000, 2e-4, 16, 64) == Scaled(75_000, 8e-4, 4.0)``.  The
    iteration count is rounded to the nearest integer.
    """
    iterations = _positive_int(iterations, "iterations")
    base_batch = _positive_int(base_batch, "base_batch")
    batch = _positive_int(batch, "batch")
    lr = _positive_float(lr, "lr")
    m = batch / base_batch
    return Scaled(max(1, round(iterations / m)), lr * m, m)


def _restage(plan: Plan, new_total: int, batch_of, lr_of, warmup: Warmup | None, name: str,
             why: str) -> Plan:
    """``plan`` with its stage edges scaled to ``new_total`` iterations (rounded; lengths
    stay within 1 of proportional); ``batch_of(stage)`` / ``lr_of(stage)`` give the new
    batch and LR.  Periods follow their meaning: a period equal to the old total becomes
    the new total, one equal to its stage's length the new length, any other is scaled.
    """
    old_total = plan.total_iterations
    factor = new_total / old_total
    edges = [round(e * factor) for e in plan.boundaries]
    stages = []
    for j, s in enumerate(plan.stages):
        length = edges[j + 1] - edges[j]
        if length <= 0:
            raise PlanError(f"stage {j + 1} ({s.label}) of {s.iterations} iterations vanishes {why}")
        if s.period == old_total:
            period = new_total
        elif s.period == s.iterations:
            period = length
        else:
            period = max(length, round(s.period * factor))
        stages.append(Stage(length, s.patch, s.frames, batch_of(s), lr_of(s), period=period))
    return Plan(tuple(stages), eta_min=plan.eta_min, warmup=warmup, name=name, description=plan.description)


def scale_batch(plan: Plan, m: float, *, warmup: Warmup | None = None, name: str | None = None) -> Plan:
    """The linear scaling rule applied to a whole plan: every batch x m, every LR x m,
    iterations / m.

    Stage edges are divided by m and rounded (so the total is ``round(total / m)`` and
    stage lengths stay within 1 of proportional).  Periods follow their meaning: a period
    equal to the old total becomes the new total, one equal to its stage's length the new
    length, any other ``round(period / m)``.  The result has ``warmup`` (pass
    ``goyal_warmup(m)`` for the paper's; the input plan's warmup is not carried over).
    Per-stage LR overrides are scaled too; build the plan at its final scale with
    :func:`multigrid` where an override is meant literally (EDVR-M's 2e-4).
    """
    m = _positive_float(m, "batch multiplier m")

    def batch_of(s: Stage) -> int:
        batch = s.batch * m
        if abs(batch - round(batch)) > 1e-9:
            raise PlanError(f"stage {s.label} batch {s.batch} x m={m:g} = {batch:g} is not a whole number of samples")
        return round(batch)

    return _restage(plan, round(plan.total_iterations / m), batch_of, lambda s: s.lr * m, warmup,
                    plan.name if name is None else name, f"when divided by m={m:g}")


def shrink(plan: Plan, iterations: int | None = None, batch: int | None = None, patch_div: int = 1,
           lr_mult: float = 1.0, frames_div: int = 1) -> Plan:
    """A quick-run version of ``plan``: ``iterations`` in all (stages keep their shares of the
    run, the warmup its share of the run), every stage's ``batch`` replaced, every LR patch
    divided by ``patch_div`` (64 -> 16 for ``patch_div=4``; it must divide evenly), every clip
    length divided by ``frames_div`` and rounded up (15, 11, 7 -> 8, 6, 4 for 2) and/or every
    stage's starting LR times ``lr_mult`` (periods and warmup unchanged).

    Without ``lr_mult`` the LRs are kept as they are (this is not the linear scaling rule: see
    :func:`scale_batch`).  :meth:`mgvsr.presets.Preset.shrunk` applies it to a preset (and
    scales its frozen spans with it): ``mgvsr train --iterations N --batch B`` and the CPU
    scales of the paper's runs.
    """
    total = plan.total_iterations if iterations is None else _positive_int(iterations, "iterations")
    if batch is not None:
        batch = _positive_int(batch, "batch")
    lr_mult = _positive_float(lr_mult, "lr_mult")
    warmup = plan.warmup
    if warmup is not None and total != plan.total_iterations:
        n = max(1, round(warmup.iterations * total / plan.total_iterations))
        warmup = replace(warmup, iterations=n) if n < total else None
    patch_div = _positive_int(patch_div, "patch_div")
    frames_div = _positive_int(frames_div, "frames_div")
    for s in plan.stages:
        if s.patch % patch_div:
            raise PlanError(f"stage {s.label}: LR patch {s.patch} is not divisible by patch_div {patch_div}")
    if lr_mult != 1.0:
        plan = Plan(tuple(replace(s, lr=s.lr * lr_mult, start=None) for s in plan.stages), eta_min=plan.eta_min,
                    warmup=plan.warmup, name=plan.name, description=plan.description)
    if total == plan.total_iterations and batch is None and patch_div == 1 and frames_div == 1:
        return plan
    shrunk = _restage(plan, total, lambda s: s.batch if batch is None else batch, lambda s: s.lr, warmup,
                      plan.name, f"when the plan is shrunk to {total} iterations")
    if patch_div == 1 and frames_div == 1:
        return shrunk
    return replace(shrunk, stages=tuple(replace(s, patch=s.patch // patch_div, frames=-(-s.frames // frames_div))
                                        for s in shrunk.stages))


def stretch_warmup(plan: Plan, mult: float) -> Plan:
    """``plan`` with its warmup ``mult`` times as long (at least one iteration, shorter than the run); the
    plan itself where it has no warmup or ``mult`` is 1."""
    if plan.warmup is None or mult == 1:
        return plan
    n = min(plan.total_iterations - 1, max(1, round(plan.warmup.iterations * _positive_float(mult, "warmup_mult"))))
    return replace(plan, warmup=replace(plan.warmup, iterations=n))


# --------------------------------------------------------------------------------------
# One cosine over a multigrid's stages (Eq. 1's ablation)
# --------------------------------------------------------------------------------------


def one_cosine_over_stages(plan: Plan) -> Plan:
    """``plan``'s stages (shapes, lengths, batches) under one cosine from its first stage's LR to
    ``eta_min`` over all iterations, restarts removed: Eq. 1's ablation.  A :class:`Plan` restarts its
    cosine at every stage, so the one cosine is expressed stage by stage: stage ``j`` starts at the
    one-cosine LR of its first iteration, and its period is chosen so that it also ends where the one
    cosine ends the stage.  The first stage follows the one cosine exactly, the others within a few
    percent of the peak LR (:func:`max_lr_gap`).  The warmup is kept."""
    eta, eta_min, total = plan.stages[0].lr, plan.eta_min, plan.total_iterations

    def global_lr(t: float) -> float:
        return cosine(eta, eta_min, t, total)

    stages = []
    for s in plan.stages:
        start_lr = global_lr(s.start)
        # (start_lr - eta_min) * c(P / D) = global_lr(end) - eta_min, with c(x) = (1 + cos(pi x)) / 2
        ratio = (global_lr(s.end) - eta_min) / (start_lr - eta_min)
        x = math.acos(min(1.0, max(-1.0, 2.0 * ratio - 1.0))) / math.pi
        period = s.iterations if x >= 1.0 else max(s.iterations, round(s.iterations / x))
        stages.append(Stage(s.iterations, s.patch, s.frames, s.batch, start_lr, period=period))
    return Plan(tuple(stages), eta_min=eta_min, warmup=plan.warmup, name="one cosine (no restarts)",
                description="the same shapes under one cosine over the whole run")


def max_lr_gap(plan: Plan, reference_lr: float | None = None) -> float:
    """The largest gap between :func:`one_cosine_over_stages`'s LR and the exact one cosine over
    every iteration of ``plan``, as a fraction of ``reference_lr`` (default: the first stage's LR)."""
    import numpy as np  # as Plan.lrs: numpy only where arrays are asked for

    approx = one_cosine_over_stages(plan)
    its = np.arange(plan.total_iterations + 1)
    eta = plan.stages[0].lr
    exact = plan.eta_min + (eta - plan.eta_min) * 0.5 * (1 + np.cos(np.pi * its / plan.total_iterations))
    if plan.warmup is not None:
        exact = exact * np.array([plan.warmup.factor(int(i)) for i in its])
    return float(np.max(np.abs(approx.lrs(its) - exact)) / (reference_lr or eta))


# --------------------------------------------------------------------------------------
# Eq. 1 as printed
# --------------------------------------------------------------------------------------


def eq1_as_printed(plan: Plan, it):
    """The paper's Eq. 1 exactly as printed, for comparison with :meth:`Plan.lr`.

    ``cos((t - sum_{j < s(t)} P_j) / I_total) * eta`` for stages 1..p-1 and
    ``cos((t - sum_{j < p} P_j) / P_p) * eta`` for the last stage, with eta the stage's
    starting LR.  The printed second case reads ``s(t) = p - 1``, which overlaps the first
    case and leaves stage p without a formula; we read it as ``s(t) = p``.  Note the
    missing pi/2: the argument stays in [0, 1], so the LR never falls below
    cos(1) * eta = 0.54 * eta, even at the end of training.

    ``it`` may be an int (returns a float) or an array (returns a numpy array).
    """
    if isinstance(it, numbers.Integral):
        index = plan._index(it)
        s = plan.stages[index]
        denom = s.iterations if index == len(plan.stages) - 1 else plan.total_iterations
        return math.cos((it - s.start) / denom) * s.lr
    import numpy as np

    return np.array([eq1_as_printed(plan, int(i)) for i in np.asarray(it).ravel()]).reshape(np.shape(it))
