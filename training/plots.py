"""Training curves from metrics.jsonl: loss and validation perplexity bound, as PNG and plotly HTML."""
import json
from pathlib import Path

import plotly.graph_objects as go
from matplotlib.figure import Figure
from plotly.subplots import make_subplots


def read_metrics(path):
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    train = [r for r in rows if "loss" in r]
    valid = [r for r in rows if "valid_ppl" in r]
    return train, valid


def write_plots(metrics_file, out_stem):
    """Write `out_stem`.html (plotly) and `out_stem`.png (matplotlib)."""
    train, valid = read_metrics(metrics_file)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("training loss (nats/token)", "validation perplexity bound"))
    fig.add_trace(go.Scatter(x=[r["step"] for r in train], y=[r["loss"] for r in train], name="loss"), 1, 1)
    fig.add_trace(go.Scatter(x=[r["step"] for r in valid], y=[r["valid_ppl"] for r in valid], name="valid"), 1, 2)
    fig.update_yaxes(type="log", row=1, col=2)
    fig.update_xaxes(title_text="step")
    fig.write_html(f"{out_stem}.html", include_plotlyjs="cdn")

    fig2 = Figure(figsize=(10, 3.6))
    a, b = fig2.subplots(1, 2)
    a.plot([r["step"] for r in train], [r["loss"] for r in train])
    a.set(title="training loss (nats/token)", xlabel="step")
    b.plot([r["step"] for r in valid], [r["valid_ppl"] for r in valid], marker="o")
    b.set(title="validation perplexity bound", xlabel="step", yscale="log")
    fig2.tight_layout()
    fig2.savefig(f"{out_stem}.png", dpi=110)
