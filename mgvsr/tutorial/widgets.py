"""ipywidgets explorers for the notebooks: sliders wired to the plain functions of :mod:`mgvsr.tutorial.explore`.

- :func:`schedule_explorer` (notebook 3): choose spatial and temporal sizes, hierarchical or
  synchronous, iterations, batch and LR; see the stage table with each stage's share of
  compute, the expected speedup against the baseline, and the plan's figure
  (:func:`mgvsr.figures.plot_plan`), all read from the one :class:`~mgvsr.schedule.Plan` that
  :func:`mgvsr.schedule.multigrid` builds for the trainer.
- :func:`eq1_explorer` (notebook 4): number of stages, warmup kind and length, LR; see
  Eq. 1 as intended beside Eq. 1 as printed, as numbers and as a figure.

Each returns an :class:`Explorer`: make it a cell's last expression to display it, or
drive it from code (``explorer.controls["batch"].value = 32``; ``explorer.table.value`` is
the HTML the reader sees).  A page without a kernel (GitHub, nbviewer) shows no widget:
:func:`schedule_view` and :func:`eq1_view`, with the explorers' arguments and defaults, give what
an explorer shows in a state (its table as text, its figure) as static outputs; the explorers
draw every state with them.  Nothing here computes: every callback calls one function of
:mod:`mgvsr.tutorial.explore` and renders what it returns.  Torch is never imported; ipywidgets is
imported when an explorer is built.
"""

from __future__ import annotations

import html
import io
from dataclasses import dataclass, field
from typing import Any, Callable

from mgvsr.errors import MgvsrError
from mgvsr.figures import plot_plan
from mgvsr.tutorial.explore import (
    EQ1_LAYOUTS,
    INTENDED,
    ONE_COSINE,
    PRINTED,
    SGDR,
    WARMUP_CHOICES,
    StepTimes,
    eq1_facts_text,
    eq1_plan,
    eq1_table_text,
    parse_sizes,
    plot_eq1,
    schedule_summary,
    summary_html,
    summary_text,
)
from mgvsr.schedule import COMBINE_MODES

STAGE_TABLE_CLASS = "mgvsr-stage-table"  # CSS class of the schedule explorer's table (the browser check reads it)
EQ1_TABLE_CLASS = "mgvsr-eq1-table"


@dataclass
class Explorer:
    """A displayed explorer: ``box`` (the widget tree), its named ``controls``, the ``table``
    (an HTML widget) and ``figure`` (an Image widget) it updates, and ``refresh()``, which
    every control's change calls."""

    box: Any
    controls: dict[str, Any]
    table: Any
    figure: Any
    refresh: Callable[[], None] = field(repr=False)

    def _repr_mimebundle_(self, **kwargs):
        return self.box._repr_mimebundle_(**kwargs)


def figure_png(fig, dpi: int = 80) -> bytes:
    """A matplotlib figure as PNG bytes (for an Image widget)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def error_html(exc: Exception) -> str:
    """A bad input's message, shown where the table would be."""
    return f'<p style="color:#b00020"><b>Cannot build this plan:</b> {html.escape(str(exc))}</p>'


def _wire(controls: dict[str, Any], refresh: Callable[[], None]) -> None:
    for control in controls.values():
        control.observe(lambda _change: refresh(), names="value")


def _log_lr_slider(value: float):
    import ipywidgets as w

    return w.FloatLogSlider(value=value, base=10, min=-5, max=-2, step=0.05, description="LR",
                            readout_format=".1e", continuous_update=False)


@dataclass
class ExplorerView:
    """What an explorer shows in one state, as static outputs: ``text`` (its table as plain text: print
    it), ``figure`` (a matplotlib Figure: a cell's last value) and ``html`` (the table as the widget
    renders it)."""

    text: str
    figure: Any = field(repr=False)
    html: str = field(repr=False, default="")


def schedule_view(
    spatial: str = "32, 64",
    temporal: str = "7, 11, 15",
    combine: str = "hierarchical",
    iterations: int = 75_000,
    batch: int = 64,
    lr: float = 8e-4,
    step_times: StepTimes | None = None,
) -> ExplorerView:
    """What :func:`schedule_explorer` shows for these controls (the defaults: its first state): the
    stage table with each stage's share of compute and the expected speedup, and the plan's figure.
    Raises :class:`~mgvsr.errors.PlanError` for sizes it cannot build."""
    summary = schedule_summary(parse_sizes(spatial, "spatial sizes"), parse_sizes(temporal, "temporal sizes"),
                               combine, iterations, batch, lr, step_times)
    return ExplorerView(summary_text(summary), plot_plan(summary["plan"]), summary_html(summary))


def eq1_view(
    stages: int = 6,
    warmup: str = "linear",
    warmup_iterations: int = 5_000,
    lr: float = 8e-4,
    iterations: int = 75_000,
    sgdr: bool = False,
) -> ExplorerView:
    """What :func:`eq1_explorer` shows for these controls (the defaults: its first state): Eq. 1 as
    intended beside as printed (and one cosine; SGDR too when ``sgdr``), as numbers and as a figure."""
    plan = eq1_plan(stages, iterations, lr, warmup, warmup_iterations)
    curves = (INTENDED, PRINTED, ONE_COSINE) + ((SGDR,) if sgdr else ())
    text = eq1_facts_text(plan) + "\n\n" + eq1_table_text(plan)
    return ExplorerView(text, plot_eq1(plan, curves=curves), f"<pre>{html.escape(text)}</pre>")


def schedule_explorer(
    spatial: str = "32, 64",
    temporal: str = "7, 11, 15",
    combine: str = "hierarchical",
    iterations: int = 75_000,
    batch: int = 64,
    lr: float = 8e-4,
    step_times: StepTimes | None = None,
) -> Explorer:
    """The multigrid schedule explorer (defaults: the paper's BasicVSR-M plan, Table 1 ⑤).

    ``step_times``: measured seconds per step by ``(patch, frames, batch)`` for the cost
    model (default: LR pixels); see :mod:`mgvsr.tutorial.explore`.
    """
    import ipywidgets as w

    wide = {"description_width": "initial"}
    controls = dict(
        spatial=w.Text(value=spatial, description="spatial sizes (LR patch)", style=wide, continuous_update=False),
        temporal=w.Text(value=temporal, description="temporal sizes (frames)", style=wide, continuous_update=False),
        combine=w.ToggleButtons(value=combine, options=list(COMBINE_MODES), description="cycles"),
        iterations=w.IntSlider(value=iterations, min=1_000, max=600_000, step=1_000, description="iterations",
                               continuous_update=False, layout=w.Layout(width="420px")),
        batch=w.IntSlider(value=batch, min=1, max=128, description="batch", continuous_update=False),
        lr=_log_lr_slider(lr),
    )
    table = w.HTML()
    table.add_class(STAGE_TABLE_CLASS)
    figure = w.Image(format="png", layout=w.Layout(max_width="760px"))

    def refresh() -> None:
        c = controls
        try:
            view = schedule_view(c["spatial"].value, c["temporal"].value, c["combine"].value, c["iterations"].value,
                                 c["batch"].value, c["lr"].value, step_times)
        except MgvsrError as exc:
            table.value = error_html(exc)
            return
        table.value = view.html
        figure.value = figure_png(view.figure)

    _wire(controls, refresh)
    refresh()
    box = w.VBox([
        w.HBox([controls["spatial"], controls["temporal"]]),
        controls["combine"],
        w.HBox([controls["iterations"], controls["batch"], controls["lr"]]),
        table,
        figure,
    ])
    return Explorer(box, controls, table, figure, refresh)


def eq1_explorer(
    stages: int = 6,
    warmup: str = "linear",
    warmup_iterations: int = 5_000,
    lr: float = 8e-4,
    iterations: int = 75_000,
) -> Explorer:
    """The Eq. 1 explorer: intended against printed over a plan of ``stages`` stages
    (one of :data:`mgvsr.explore.EQ1_LAYOUTS`), with a warmup and a starting LR."""
    import ipywidgets as w

    controls = dict(
        stages=w.SelectionSlider(value=stages, options=sorted(EQ1_LAYOUTS), description="stages",
                                 continuous_update=False),
        warmup=w.ToggleButtons(value=warmup, options=list(WARMUP_CHOICES), description="warmup"),
        warmup_iterations=w.IntSlider(value=warmup_iterations, min=500, max=20_000, step=500,
                                      description="warmup its", continuous_update=False),
        lr=_log_lr_slider(lr),
        sgdr=w.Checkbox(value=False, description="also: every stage decays fully (SGDR)", indent=False),
    )
    table = w.HTML()
    table.add_class(EQ1_TABLE_CLASS)
    figure = w.Image(format="png", layout=w.Layout(max_width="760px"))

    def refresh() -> None:
        c = controls
        try:
            view = eq1_view(c["stages"].value, c["warmup"].value, c["warmup_iterations"].value, c["lr"].value,
                            iterations, c["sgdr"].value)
        except MgvsrError as exc:
            table.value = error_html(exc)
            return
        table.value = view.html
        figure.value = figure_png(view.figure)

    _wire(controls, refresh)
    refresh()
    box = w.VBox([
        w.HBox([controls["stages"], controls["lr"]]),
        w.HBox([controls["warmup"], controls["warmup_iterations"]]),
        controls["sgdr"],
        figure,
        table,
    ])
    return Explorer(box, controls, table, figure, refresh)
