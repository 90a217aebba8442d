"""Plotly figures of a run (when each slot was decided; masked slots against time) and of a score."""
from typing import List

import numpy as np
import plotly.graph_objects as go

from .colors import NATS_STOPS, plotly_scale

LAYOUT = dict(template="plotly_white", margin=dict(l=50, r=20, t=40, b=40), font=dict(size=12))


def decisions(run, frame: int, row: int, piece) -> go.Figure:
    """Position x step heatmap for candidate `row` up to `frame`: a cell is coloured by the step at which
    that slot was decided (changed) within the frame; hover shows the token it became (`piece(id) -> str`)
    and the diffusion time of that step (for first_hitting, the exact time of the decision)."""
    frames = run.frames[:frame + 1]
    steps = [f.step for f in frames]  # (F,)
    z = np.full((len(run.start), len(frames)), np.nan)  # (L, F)
    text = np.full(z.shape, "", dtype=object)  # (L, F)
    prev = -1
    for k, f in enumerate(frames):
        new = f.decided[row] > prev  # (L,): changed since the previous kept frame
        z[new, k] = f.decided[row][new]
        for p in np.flatnonzero(new):
            text[p, k] = f"{piece(int(f.tokens[row, p]))!r} at t = {run.times[f.decided[row, p]][row]:.4f}"
        prev = f.step
    fig = go.Figure(go.Heatmap(
        z=z, x=steps, y=list(range(1, len(run.start) + 1)), text=text, colorscale=plotly_scale(), zmin=0,
        zmax=run.last, hoverongaps=False, hovertemplate="slot %{y}, step %{z}<br>token %{text}<extra></extra>",
        colorbar=dict(title="step"),
    ))
    fig.update_layout(**LAYOUT, title=f"When each slot was decided (candidate {row + 1})",
                      xaxis_title="sampler step", yaxis_title="slot", yaxis_autorange="reversed",
                      height=min(720, 240 + 6 * len(run.start)))
    return fig


def open_slots(run) -> go.Figure:
    """Masked slots left against each candidate's diffusion time, from t = 1 down to 0 (a staircase: one
    stair per decision for first_hitting); changes per step for the uniform graph, which has no masks."""
    counts, times = np.array(run.counts), np.array(run.times)  # (states, B) each
    if run.masked:
        lines = [go.Scatter(x=times[:, b], y=counts[:, b], mode="lines+markers", line_shape="hv",
                            marker_size=4, name=f"candidate {b + 1}") for b in range(counts.shape[1])]
        axes = dict(title="Masked slots against diffusion time", xaxis_title="time t (the run goes from 1 to 0)",
                    xaxis_autorange="reversed", yaxis_title="masked slots")
    else:
        lines = [go.Scatter(x=list(range(len(counts))), y=counts[:, b], mode="lines", name=f"candidate {b + 1}")
                 for b in range(counts.shape[1])]
        axes = dict(title="Slots changed per step", xaxis_title="sampler step", yaxis_title="slots changed")
    fig = go.Figure(lines)
    fig.update_layout(**LAYOUT, **axes, height=300)
    return fig


def nats_bars(tokens: List[str], nats: List[float]) -> go.Figure:
    """Each token's share of the ELBO, in nats."""
    fig = go.Figure(go.Bar(
        x=list(range(len(tokens))), y=nats, hovertext=[repr(t) for t in tokens],
        hovertemplate="token %{x}: %{hovertext}<br>%{y:.2f} nats<extra></extra>",
        marker=dict(color=nats, colorscale=plotly_scale(NATS_STOPS), line=dict(width=0.5, color="#9a3412")),
    ))
    fig.update_layout(**LAYOUT, title="Nats per token (ELBO contribution)", xaxis_title="token",
                      yaxis_title="nats", height=300)
    return fig
