"""Plotly figures built by pure functions (testable without a browser)."""

from __future__ import annotations

from typing import Any

from core.platform.text_safety import chart_label
from core.training.runs import RunEvent


def training_curves(series: dict[str, list[RunEvent]]) -> Any:
    """Loss (train and held-out) and learning rate per step; one line per run for comparisons."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Learning rate"))
    for name, events in series.items():
        train = [e for e in events if e.loss is not None]
        held = [e for e in events if e.eval_loss is not None]
        name = chart_label(name)
        fig.add_trace(go.Scatter(x=[e.step for e in train], y=[e.loss for e in train], name=f"{name} train loss",
                                 mode="lines"), row=1, col=1)
        if held:
            fig.add_trace(go.Scatter(x=[e.step for e in held], y=[e.eval_loss for e in held],
                                     name=f"{name} held-out loss", mode="lines+markers"), row=1, col=1)
        fig.add_trace(go.Scatter(x=[e.step for e in train], y=[e.learning_rate for e in train],
                                 name=f"{name} lr", mode="lines"), row=1, col=2)
    fig.update_layout(height=320, margin={"t": 40, "b": 20, "l": 20, "r": 20})
    return fig


def outcome_bars(summary: Any) -> Any:
    import plotly.graph_objects as go

    from core.reports.report_format import sentence_start

    o, names = summary.outcomes, summary.names
    labels = [sentence_start(f"{chart_label(names['tuned'])} better"), sentence_start(f"{chart_label(names['base'])} better"),
              "Tie", "Both bad"]
    fig = go.Figure(go.Bar(x=labels, y=[o.wins, o.losses, o.ties, o.both_bad],
                           marker_color=["#2a9d8f", "#e76f51", "#8d99ae", "#6c757d"]))
    fig.update_layout(title=f"Votes (N = {o.total})", height=300, margin={"t": 40, "b": 20, "l": 20, "r": 20})
    return fig


def criterion_comparison(summary: Any) -> Any:
    import plotly.graph_objects as go

    rows = summary.per_criterion
    fig = go.Figure()
    for side, colour in (("base", "#e76f51"), ("tuned", "#2a9d8f")):
        means = [r[f"{side}_mean"] or 0 for r in rows]
        errors = [((r[f"{side}_ci"] or (m, m))[1] - m) for r, m in zip(rows, means)]
        fig.add_trace(go.Bar(name=chart_label(summary.names[side]), x=[chart_label(r["criterion"]) for r in rows], y=means,
                             error_y={"type": "data", "array": errors}, marker_color=colour))
    fig.update_layout(title="Mean score per criterion (1–5)", barmode="group", height=320,
                      yaxis={"range": [0, 5.5]}, margin={"t": 40, "b": 20, "l": 20, "r": 20})
    return fig


def agreement_heatmap(summary: Any) -> Any:
    import plotly.graph_objects as go

    a = summary.agreement
    raters = [chart_label(r) for r in a.get("raters") or [""]]
    fig = go.Figure(go.Heatmap(z=a.get("pairwise") or [[None]], x=raters, y=raters,
                               zmin=0, zmax=1, colorscale="Teal"))
    fig.update_layout(title="Agreement between raters (same model preferred)", height=320,
                      margin={"t": 40, "b": 20, "l": 20, "r": 20})
    return fig
