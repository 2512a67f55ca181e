"""Plotly charts of the trait report, and a display that survives HTML export.

Under papermill, plotly's default renderer emits only the
``application/vnd.plotly.v1+json`` mimetype, which nbconvert's HTML exporter
drops, so the exported page shows no chart. :func:`show` therefore also emits
``text/html`` holding the chart, with the full plotly.js embedded in the first
chart of the kernel, so the page draws its charts offline.

The plotly.js bundled with plotly 7.1.0 is 4.8 MB. A notebook whose page is
written by :func:`twinme_lab.reports.html.export_html` calls
:func:`leave_plotlyjs_to_page` first: its charts then carry no copy of
plotly.js, the page gets one copy in its head, and the executed notebook stays
small. Papermill writes the notebook after every cell, so its size is paid for
once per cell.
"""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
from IPython.display import display

from .data import TRAITS

NOT_MEASURED = "not measured"

_state = {"plotlyjs_sent": False}


def leave_plotlyjs_to_page() -> None:
    """Leave plotly.js out of the charts this kernel shows from now on.

    For notebooks exported by :func:`twinme_lab.reports.html.export_html`, which
    adds plotly.js to the page once. JupyterLab draws the charts from their
    plotly JSON and needs no copy in the notebook.
    """
    _state["plotlyjs_sent"] = True


def show(figure: go.Figure) -> None:
    """Display a figure as plotly JSON for JupyterLab and as self-contained HTML."""
    include = not _state["plotlyjs_sent"]
    html = figure.to_html(
        full_html=False,
        include_plotlyjs=include,
        include_mathjax=False,
        config={"displaylogo": False, "responsive": True},
    )
    _state["plotlyjs_sent"] = True
    bundle = {
        "text/html": html,
        "application/vnd.plotly.v1+json": figure.to_plotly_json(),
    }
    display(bundle, raw=True)


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def trait_chart(traits: pd.DataFrame) -> go.Figure:
    """Draw predicted z-scores per trait, with coverage as the bar's opacity.

    A trait with no score gets no bar: a grey "not measured" label sits on the
    axis instead, so it cannot be read as an average (z = 0) score.
    """
    frame = traits.set_index("trait").reindex(list(TRAITS))
    measured_x, measured_y, opacity, labels = [], [], [], []
    missing_x = []
    for trait, row in frame.iterrows():
        if _is_missing(row["score"]):
            missing_x.append(trait)
            continue
        coverage = float(row["coverage"])
        measured_x.append(trait)
        measured_y.append(float(row["score"]))
        # Opacity from 0.25 (almost no evidence) to 1 (all mapped features had data).
        opacity.append(0.25 + 0.75 * max(0.0, min(1.0, coverage)))
        labels.append(
            f"z = {float(row['score']):+.2f}<br>coverage {coverage:.0%}"
            f"<br>n = {int(row['n_obs'])}"
        )

    figure = go.Figure()
    figure.add_trace(
        go.Bar(
            name="predicted (z)",
            x=measured_x,
            y=measured_y,
            text=labels,
            textposition="outside",
            marker={"color": "#3b6ea8", "opacity": opacity},
            hovertemplate="%{x}<br>%{text}<extra></extra>",
        )
    )
    figure.add_trace(
        go.Scatter(
            name=NOT_MEASURED,
            x=missing_x,
            y=[0.0] * len(missing_x),
            mode="text",
            text=[NOT_MEASURED] * len(missing_x),
            textfont={"color": "#888888"},
            hoverinfo="skip",
        )
    )
    figure.update_layout(
        title="Predicted Big Five traits (bar opacity shows coverage)",
        yaxis_title="z-score against the reference",
        xaxis={"categoryorder": "array", "categoryarray": list(TRAITS)},
        yaxis={"zeroline": True},
        showlegend=True,
        height=460,
        margin={"t": 60, "b": 40},
    )
    return figure


def history_chart(history: pd.DataFrame) -> go.Figure:
    """Draw each trait's score per scoring run; unscored runs leave a gap."""
    figure = go.Figure()
    for trait in TRAITS:
        rows = history[history["trait"] == trait]
        if not len(rows):
            continue
        scores = [None if _is_missing(v) else float(v) for v in rows["score"]]
        figure.add_trace(
            go.Scatter(
                name=trait,
                x=[t.isoformat() for t in rows["scored_at"]],
                y=scores,
                mode="lines+markers",
                connectgaps=False,
                customdata=[float(c) for c in rows["coverage"]],
                hovertemplate=(
                    trait + "<br>%{x}<br>z = %{y:.2f}<br>"
                    "coverage %{customdata:.0%}<extra></extra>"
                ),
            )
        )
    figure.update_layout(
        title="Trait scores per scoring run",
        yaxis_title="z-score against the reference",
        height=420,
    )
    return figure
