"""``mgvsr plan PRESET``: print a preset's stages and draw its shapes and LR over iterations.

    mgvsr plan table1/basicvsr_m/ours                 # table + plan-table1-basicvsr_m-ours.png
    mgvsr plan table1/basicvsr_m/ours --figure p.png  # choose the figure's path
    mgvsr plan table1/basicvsr_m/ours --no-figure
    mgvsr plan table1/basicvsr_m/ours --json --lr-at 0,5000,12500,75000
    mgvsr plan table1/basicvsr_m/ours --iterations 20 --batch 2 --patch-div 4 --model basicvsr_cpu
    mgvsr plan table1/basicvsr_m/ours --scale smoke
    mgvsr plan --list

The overrides are ``mgvsr train``'s (and ``--scale`` is ``mgvsr reproduce``'s): the plan printed
is exactly the one such a run trains (the same :class:`~mgvsr.presets.Preset` transformation).

Torch-free; matplotlib is imported only when a figure is drawn.  With ``--json`` only
the JSON is printed and no figure is written unless ``--figure`` is given.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mgvsr.errors import MgvsrError

HELP = "show a preset's training plan: stages, shapes and learning rate over iterations"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("preset", nargs="?", help="preset name, e.g. table1/basicvsr_m/ours (see --list)")
    parser.add_argument("--list", action="store_true", help="list the presets with model, dataset and table")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON instead of a table")
    parser.add_argument("--lr-at", metavar="I1,I2,..", help="with --json: the learning rate at these iterations")
    parser.add_argument("--figure", metavar="PATH", type=Path,
                        help="where to write the figure (default: plan-<preset>.png in the current directory)")
    parser.add_argument("--no-figure", action="store_true", help="do not draw a figure")
    parser.add_argument("--scale", help="the preset at a scale of `mgvsr reproduce` (smoke, lesson, paper)")
    add_overrides(parser)


def add_overrides(parser: argparse.ArgumentParser) -> None:
    """The preset overrides of `mgvsr train` and `mgvsr plan` (see :func:`transform`)."""
    q = parser.add_argument_group("overrides for quick runs")
    q.add_argument("--dataset", help="train on this dataset instead of the preset's (e.g. sample)")
    q.add_argument("--model", help="model configuration instead of the preset's (e.g. basicvsr_cpu)")
    q.add_argument("--iterations", type=int, help="total iterations (stages keep their shares)")
    q.add_argument("--batch", type=int, help="minibatch of every stage (LRs unchanged)")
    q.add_argument("--patch-div", type=int, default=1, metavar="K",
                   help="divide every stage's LR patch by K (e.g. 4: 64 -> 16 on the sample clips)")
    q.add_argument("--lr-mult", type=float, default=1.0, metavar="X", help="every stage's starting LR times X")


def transform(preset, args: argparse.Namespace):
    """The preset as the command line asks for it: at ``--scale``, then on ``--model`` /
    ``--dataset``, then shrunk by ``--iterations``, ``--batch``, ``--patch-div``, ``--lr-mult``."""
    if getattr(args, "scale", None):
        preset = preset.at_scale(args.scale)
    preset = preset.on(model=args.model, dataset=args.dataset)
    return preset.shrunk(iterations=args.iterations, batch=args.batch, patch_div=args.patch_div,
                         lr_mult=args.lr_mult)


def default_figure_path(preset_name: str) -> Path:
    return Path(f"plan-{preset_name.replace('/', '-')}.png")


def _parse_iterations(text: str) -> list[tuple[str, int]]:
    pairs = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            pairs.append((item, int(item)))
        except ValueError:
            raise MgvsrError(f"--lr-at expects comma-separated integer iterations, got {item!r} in {text!r}") from None
    if not pairs:
        raise MgvsrError(f"--lr-at expects comma-separated integer iterations, got {text!r}")
    return pairs


def plan_json(preset, lr_at: list[tuple[str, int]] | None = None) -> dict:
    """The JSON ``mgvsr plan --json`` prints (``preset``, ``total_iterations``, ``stages``,
    ``lr_at`` and a few extra keys)."""
    plan = preset.plan
    return {
        "preset": preset.name,
        "model": preset.model,
        "dataset": preset.dataset,
        "total_iterations": plan.total_iterations,
        "eta_min": plan.eta_min,
        "warmup": None if plan.warmup is None else plan.warmup.to_dict(),
        "stages": [s.to_dict() for s in plan.stages],
        "lr_at": {key: plan.lr(it) for key, it in (lr_at or [])},
    }


def expected_speedup_line(preset, base) -> str:
    """The speedup ``preset`` can expect against ``base`` (its baseline, transformed alike) from the LR pixels
    each processes (:attr:`mgvsr.schedule.Plan.work`): the bound in device-time of a device whose step costs
    its pixels; with m times the baseline's minibatch on m times its devices, wall-clock up to m times that."""
    ratio = base.plan.work / preset.plan.work
    m = preset.plan.stages[0].batch / base.plan.stages[0].batch
    line = (f"  expected speedup from LR pixel counts (Plan.work): {ratio:.2f}x in device-time "
            f"({base.plan.work:,} LR pixels for {base.name}, {preset.plan.work:,} here; "
            f"{base.plan.samples:,} and {preset.plan.samples:,} clips)")
    if m > 1:
        line += f"; on {m:g}x its devices (minibatch x{m:g}), up to {m * ratio:.2f}x in wall-clock"
    return line


def _list() -> str:
    from mgvsr.presets import list_presets

    presets = list_presets()
    width = max(len(p.name) for p in presets)
    lines = [f"{'preset'.ljust(width)}  {'model':<12} {'dataset':<9} {'table':<6} stages  iterations"]
    for p in presets:
        table = f"{p.table} {p.row}" if p.table and p.row and len(p.row) == 1 else (p.table or "-")
        lines.append(f"{p.name.ljust(width)}  {p.model:<12} {p.dataset:<9} {table:<6} "
                     f"{len(p.plan):>6}  {p.plan.total_iterations:>10,}")
    return "\n".join(lines)


def _draw(preset, path: Path) -> None:
    from mgvsr.figures import plot_plan

    fig = plot_plan(preset.plan, title=preset.name)
    try:
        fig.savefig(path, dpi=120)
    except OSError as exc:
        raise MgvsrError(f"cannot write the figure to {path}: {exc.strerror or exc}") from None


def run(args: argparse.Namespace) -> int:
    from mgvsr.presets import get_preset

    if args.list:
        print(_list())
        return 0
    if not args.preset:
        raise MgvsrError("give a PRESET name, or --list to see them")
    preset = transform(get_preset(args.preset), args)
    if args.lr_at and not args.json:
        raise MgvsrError("--lr-at goes with --json")
    figure = None if args.no_figure else (args.figure or (None if args.json else default_figure_path(preset.name)))

    if args.json:
        lr_at = _parse_iterations(args.lr_at) if args.lr_at else None
        print(json.dumps(plan_json(preset, lr_at), indent=2))
    else:
        print(preset.describe())
        if preset.baseline:
            print(expected_speedup_line(preset, transform(get_preset(preset.baseline), args)))
        print()
        print(preset.plan.table())
    if figure is not None:
        _draw(preset, figure)
        if not args.json:
            print(f"\nfigure: {figure}")
    return 0
