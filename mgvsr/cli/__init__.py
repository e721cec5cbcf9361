"""The ``mgvsr`` command line: ``mgvsr demo | train | eval | plan | prepare | reproduce | report``.

Each subcommand is a module of :mod:`mgvsr.cli` with ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int`` (and optionally ``EPILOG``, shown at the end of its ``--help``).
Building the parser imports every one of them, so they import no torch at their top: each
``run`` imports the library modules it calls (the only imports inside function bodies in
mgvsr, with those of optional packages), so that ``mgvsr --help`` and ``mgvsr plan`` answer
in a fraction of a second.

Exit statuses: 0 done, 2 an error named on stderr, 75 preempted (a stop signal during
training: the checkpoint is written, ``--resume`` continues), 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from mgvsr.errors import EXIT_PREEMPTED, MgvsrError, Preempted

# subcommand name -> module in mgvsr.cli
COMMANDS = {
    "demo": "demo",
    "train": "train",
    "eval": "eval",
    "plan": "plan",
    "prepare": "prepare",
    "reproduce": "reproduce",
    "report": "report",
}


def _available_commands() -> dict:
    modules = {}
    for name, module in COMMANDS.items():
        try:
            modules[name] = importlib.import_module(f"mgvsr.cli.{module}")
        except ModuleNotFoundError as exc:  # a subcommand not built yet
            if exc.name != f"mgvsr.cli.{module}":
                raise
    return modules


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mgvsr",
        description="Multigrid and large-minibatch training of video super-resolution models.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in _available_commands().items():
        epilog = getattr(module, "EPILOG", None)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP, epilog=epilog,
                           formatter_class=argparse.RawDescriptionHelpFormatter if epilog else argparse.HelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except Preempted as exc:
        print(f"mgvsr {args.command}: preempted: {exc}", file=sys.stderr)
        return EXIT_PREEMPTED
    except MgvsrError as exc:
        print(f"mgvsr {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mgvsr {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `mgvsr plan --list | head`
        sys.stderr.close()
        return 0
