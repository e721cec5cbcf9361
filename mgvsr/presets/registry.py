"""The registry of named presets: :func:`register`, :func:`get_preset`, :func:`list_presets`, and the
paper's tables as lists of presets (:func:`table_presets`, :func:`table_runs`).  Torch-free."""

from __future__ import annotations

import difflib

from mgvsr.errors import MgvsrError
from mgvsr.presets.preset import BEYOND_PAPER, Preset


class UnknownPresetError(MgvsrError, LookupError):
    """No preset of that name (the message lists close matches)."""


PRESETS: dict[str, Preset] = {}


def register(preset: Preset) -> Preset:
    """Add a preset to :data:`PRESETS` (a name may be registered once)."""
    if preset.name in PRESETS:
        raise MgvsrError(f"preset {preset.name!r} is already registered")
    if preset.baseline is not None and preset.baseline not in PRESETS and preset.baseline != preset.name:
        raise MgvsrError(f"preset {preset.name!r}: its baseline {preset.baseline!r} is not registered (register it first)")
    PRESETS[preset.name] = preset
    return preset


def get_preset(name: str) -> Preset:
    """The preset called ``name``; an unknown name raises an error listing close matches."""
    if name in PRESETS:
        return PRESETS[name]
    close = [n for n in PRESETS if n.startswith(name.rstrip("/") + "/")]
    close += [n for n in difflib.get_close_matches(name, list(PRESETS), n=6, cutoff=0.6) if n not in close]
    group = name.split("/")[0] + "/"
    if "/" in name and not any(n.startswith(group) for n in close):  # at least the same table
        close = [n for n in PRESETS if n.startswith(group)] + close
    hint = ("; did you mean: " + ", ".join(close[:12])) if close else ""
    raise UnknownPresetError(f"unknown preset {name!r}{hint} (`mgvsr plan --list` lists all {len(PRESETS)})")


def list_presets(table: str | None = None, model: str | None = None, dataset: str | None = None) -> list[Preset]:
    """All presets in definition order, optionally only those of a table, model or dataset."""
    return [p for p in PRESETS.values()
            if (table is None or p.table == table)
            and (model is None or p.model == model)
            and (dataset is None or p.dataset == dataset)]


# the paper's tables, two of its claims made outside them (Eq. 1's restarts, Fig. 2's small shapes),
# and mgvsr's own beyond the paper (:data:`BEYOND_PAPER`: "basicvsrpp", mgvsr.presets.basicvsrpp)
PAPER_TABLES = ("1", "2", "3", "4", "5", "6", "7", "7a", "7b", "8", "8a", "8b", "9", "eq1", "fig2")
TABLES = PAPER_TABLES + BEYOND_PAPER
ALL_TABLES = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "eq1", "fig2")  # `mgvsr reproduce --table all`: the paper's


def table_presets(table: str | int) -> list[Preset]:
    """The presets of a table of the paper (or of mgvsr's, :data:`BEYOND_PAPER`), in its row order.  ``"7"``
    is 7a then 7b (likewise 8)."""
    table = str(table)
    if table not in TABLES:
        raise MgvsrError(f"unknown table {table!r}; the paper's tables are {', '.join(PAPER_TABLES)}, "
                         f"mgvsr's beyond it {', '.join(BEYOND_PAPER)}")
    parts = [table + "a", table + "b"] if table in ("7", "8") else [table]
    return [p for part in parts for p in list_presets(table=part)]


def table_runs(table: str | int) -> list[Preset]:
    """The presets to train for a table: its own, then the baselines its rows are compared against (once)."""
    presets = table_presets(table)
    names = [p.name for p in presets]
    extra = []
    for p in presets:
        if p.baseline and p.baseline not in names and p.baseline not in extra:
            extra.append(p.baseline)
    return presets + [get_preset(name) for name in extra]
