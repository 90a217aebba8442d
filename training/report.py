"""What an evaluation run leaves behind: a markdown table and a JSON file, each with the command that
made it, and for sample quality a log-log figure (PNG via matplotlib, HTML via plotly) that carries
the command too."""
import json
from pathlib import Path
from typing import Dict, List, Optional

import plotly.graph_objects as go
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter
from plotly.subplots import make_subplots

from sedd_core.files import write_text


def table(header: List[str], rows: List[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


def write(out: Path, stem: str, title: str, command: str, markdown: str, payload: dict, notes: str = "") -> str:
    """Write OUT/stem.md (title, command, table, notes) and OUT/stem.json (payload and command); returns the markdown."""
    out.mkdir(parents=True, exist_ok=True)
    text = f"# {title}\n\n`{command}`\n\n{markdown}\n" + (f"\n{notes}\n" if notes else "")
    write_text(out / f"{stem}.md", text)
    write_text(out / f"{stem}.json", json.dumps({"command": command, **payload}, indent=2))
    return text


def steps_figure(out_stem: Path, series: Dict[str, dict], reference: Optional[dict], judge: str, command: str):
    """Generative perplexity (log-log) and unigram entropy against sampling steps, one line per sampler.

    `series`: label -> {"x": steps (or network calls), "ppl": [...], "entropy": [...], "stepless": bool};
    `reference`: {"ppl": float, "entropy": float} of held-out text, drawn as dashed lines.
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=(f"generative perplexity under {judge}", "unigram entropy (nats)"))
    mpl = Figure(figsize=(11, 4.4))
    a, b = mpl.subplots(1, 2)
    for label, s in series.items():
        mode, marker = ("markers", "s") if s["stepless"] else ("lines+markers", "o")
        fig.add_trace(go.Scatter(x=s["x"], y=s["ppl"], mode=mode, name=label, legendgroup=label), 1, 1)
        fig.add_trace(go.Scatter(x=s["x"], y=s["entropy"], mode=mode, name=label, legendgroup=label,
                                 showlegend=False), 1, 2)
        style = dict(marker=marker, linestyle="none" if s["stepless"] else "-", label=label)
        a.plot(s["x"], s["ppl"], **style)
        b.plot(s["x"], s["entropy"], **style)
    if reference:
        for col, key, ax in ((1, "ppl", a), (2, "entropy", b)):
            fig.add_hline(y=reference[key], line_dash="dash", annotation_text="held-out text", row=1, col=col)
            ax.axhline(reference[key], color="grey", linestyle="--", label="held-out text")
    fig.update_xaxes(type="log", title_text="sampling steps (first_hitting: network calls)")
    fig.update_yaxes(type="log", row=1, col=1)
    fig.add_annotation(text=command, xref="paper", yref="paper", x=0, y=-0.25, showarrow=False, font=dict(size=10))
    fig.update_layout(margin=dict(b=110))
    fig.write_html(f"{out_stem}.html", include_plotlyjs="cdn")

    a.set(xscale="log", yscale="log", xlabel="sampling steps (first_hitting: network calls)",
          title=f"generative perplexity under {Path(judge).name or judge}")
    b.set(xscale="log", xlabel="sampling steps (first_hitting: network calls)", title="unigram entropy (nats)")
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    for axis in (a.xaxis, a.yaxis, b.xaxis):
        axis.set_major_formatter(plain)
        axis.set_minor_formatter(plain)
    a.legend(fontsize=8)
    mpl.text(0.01, 0.01, command, fontsize=7, family="monospace", wrap=True)
    mpl.tight_layout(rect=(0, 0.07, 1, 1))
    mpl.savefig(f"{out_stem}.png", dpi=110)


def frontier_figure(out_stem: Path, results: List[dict], reference: Optional[dict], judge: str, command: str):
    """The quality/diversity frontier: generative perplexity (log) against unigram entropy, one point per
    sampler setting (`results`: label, gen_ppl, entropy, exact), the exact samplers drawn as squares."""
    fig = go.Figure()
    mpl = Figure(figsize=(8, 5.5))
    ax = mpl.subplots()
    for exact in (True, False):
        pts = [r for r in results if r["exact"] == exact]
        name = "exact samplers" if exact else "sampling controls (not exact)"
        fig.add_trace(go.Scatter(x=[r["entropy"] for r in pts], y=[r["gen_ppl"] for r in pts], mode="markers+text",
                                 text=[r["label"] for r in pts], textposition="top center", name=name,
                                 marker=dict(symbol="square" if exact else "circle", size=10 if exact else 8)))
        ax.scatter([r["entropy"] for r in pts], [r["gen_ppl"] for r in pts], marker="s" if exact else "o",
                   s=60 if exact else 30, label=name)
        for r in pts:
            ax.annotate(r["label"], (r["entropy"], r["gen_ppl"]), fontsize=6, xytext=(3, 3), textcoords="offset points")
    if reference:
        fig.add_trace(go.Scatter(x=[reference["entropy"]], y=[reference["ppl"]], mode="markers+text", name="held-out text",
                                 text=["held-out text"], marker=dict(symbol="star", size=14)))
        ax.scatter([reference["entropy"]], [reference["ppl"]], marker="*", s=150, label="held-out text")
    fig.update_layout(xaxis_title="unigram entropy of the samples (nats)", yaxis_type="log",
                      yaxis_title=f"generative perplexity under {judge}", margin=dict(b=110))
    fig.add_annotation(text=command, xref="paper", yref="paper", x=0, y=-0.2, showarrow=False, font=dict(size=10))
    fig.write_html(f"{out_stem}.html", include_plotlyjs="cdn")
    ax.set(yscale="log", xlabel="unigram entropy of the samples (nats)",
           ylabel=f"generative perplexity under {Path(judge).name or judge}")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.legend(fontsize=8)
    mpl.text(0.01, 0.01, command, fontsize=7, family="monospace", wrap=True)
    mpl.tight_layout(rect=(0, 0.06, 1, 1))
    mpl.savefig(f"{out_stem}.png", dpi=110)
