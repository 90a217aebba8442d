"""What an evaluation run leaves behind: a markdown table and a JSON file, each with the command that
made it, and for sample quality a log-log figure (PNG via matplotlib, HTML via plotly) that carries
the command too."""
import json
from pathlib import Path
from typing import Dict, List, Optional

import plotly.graph_objects as go
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter
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


DASHES = ["solid", "dash", "dot", "dashdot"]  # plotly's; matplotlib's below, in the same order
LINESTYLES = ["-", "--", ":", "-."]
PLOTLY_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]  # matplotlib's C0..C5


def log_labels(axis, ticks=None):
    """Plain numbers on a log axis: at `ticks` when given, else at 1, 2 and 5 times each power of ten."""
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    if ticks is not None:
        axis.set_major_locator(FixedLocator(sorted(set(ticks))))
        axis.set_minor_formatter(NullFormatter())
    else:
        axis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "25" else ""))
    axis.set_major_formatter(plain)


def steps_figure(out_stem: Path, series: Dict[str, dict], reference: Optional[dict], judge: str, command: str):
    """Generative perplexity (log-log) and unigram entropy against sampling steps, one line per sampler.

    `series`: label -> {"x": steps (or network calls), "ppl": [...], "entropy": [...], "stepless": bool};
    `reference`: {"ppl": float, "entropy": float} of held-out text, drawn as dashed lines.
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=(f"generative perplexity under {judge}", "unigram entropy (nats)"))
    mpl = Figure(figsize=(11, 4.4))
    a, b = mpl.subplots(1, 2)
    for i, (label, s) in enumerate(series.items()):  # samplers that coincide stay visible: dashes, shrinking markers
        mode, marker = ("markers", "s") if s["stepless"] else ("lines+markers", "o")
        line, size = dict(dash=DASHES[i % len(DASHES)]), max(4, 11 - 2 * i)
        for col, key in ((1, "ppl"), (2, "entropy")):
            fig.add_trace(go.Scatter(x=s["x"], y=s[key], mode=mode, name=label, legendgroup=label, line=line,
                                     marker=dict(size=size), showlegend=col == 1), 1, col)
        style = dict(marker=marker, markersize=size - 2, label=label,
                     linestyle="none" if s["stepless"] else LINESTYLES[i % len(LINESTYLES)])
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
    steps = [x for s in series.values() for x in s["x"]]
    log_labels(a.xaxis, steps)
    log_labels(b.xaxis, steps)
    log_labels(a.yaxis)
    a.legend(fontsize=8)
    mpl.text(0.01, 0.01, command, fontsize=7, family="monospace", wrap=True)
    mpl.tight_layout(rect=(0, 0.07, 1, 1))
    mpl.savefig(f"{out_stem}.png", dpi=110)


def frontier_figure(out_stem: Path, results: List[dict], reference: Optional[dict], judge: str, command: str):
    """The quality/diversity frontier: generative perplexity (log) against unigram entropy, one point per
    sampler setting (`results`: predictor, label, gen_ppl, entropy, exact). One colour per sampler; a
    point is labelled with its controls only ("exact" for none) and the exact ones are squares."""
    fig = go.Figure()
    mpl = Figure(figsize=(8, 5.5))
    ax = mpl.subplots()
    colours = {}
    for r in results:
        first = r["predictor"] not in colours  # its first point carries the legend entry
        colour = colours.setdefault(r["predictor"], f"C{len(colours)}")
        short = r["label"][len(r["predictor"]):].strip(" ()") or ("exact" if r["exact"] else "defaults")
        fig.add_trace(go.Scatter(x=[r["entropy"]], y=[r["gen_ppl"]], mode="markers+text", text=[short],
                                 textposition="top center", name=r["predictor"], legendgroup=r["predictor"],
                                 showlegend=first, hovertext=r["label"],
                                 marker=dict(symbol="square" if r["exact"] else "circle", size=11 if r["exact"] else 8,
                                             color=PLOTLY_COLOURS[int(colour[1:]) % len(PLOTLY_COLOURS)])))
        ax.scatter([r["entropy"]], [r["gen_ppl"]], marker="s" if r["exact"] else "o", s=70 if r["exact"] else 30,
                   color=colour, label=r["predictor"] if first else None)
        ax.annotate(short, (r["entropy"], r["gen_ppl"]), fontsize=6, xytext=(4, 2), textcoords="offset points")
    if reference:
        fig.add_trace(go.Scatter(x=[reference["entropy"]], y=[reference["ppl"]], mode="markers+text", name="held-out text",
                                 text=["held-out text"], marker=dict(symbol="star", size=14, color="black")))
        ax.scatter([reference["entropy"]], [reference["ppl"]], marker="*", s=150, color="black", label="held-out text")
    fig.update_layout(xaxis_title="unigram entropy of the samples (nats)", yaxis_type="log",
                      yaxis_title=f"generative perplexity under {judge}", margin=dict(b=110),
                      title="squares: exact samplers; circles: sampling controls (not exact)")
    fig.add_annotation(text=command, xref="paper", yref="paper", x=0, y=-0.2, showarrow=False, font=dict(size=10))
    fig.write_html(f"{out_stem}.html", include_plotlyjs="cdn")
    ax.set(yscale="log", xlabel="unigram entropy of the samples (nats)",
           ylabel=f"generative perplexity under {Path(judge).name or judge}",
           title="squares: exact samplers; circles: sampling controls (not exact)")
    log_labels(ax.yaxis)
    ax.legend(fontsize=8)
    mpl.text(0.01, 0.01, command, fontsize=7, family="monospace", wrap=True)
    mpl.tight_layout(rect=(0, 0.06, 1, 1))
    mpl.savefig(f"{out_stem}.png", dpi=110)
