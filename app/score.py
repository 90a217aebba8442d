"""The Score tab: a text's ELBO perplexity bound and each token's contribution, as coloured text."""
import html
from typing import Tuple

import plotly.graph_objects as go

from .colors import nats_colour
from .plots import nats_bars

CSS = """
.sedd-score { line-height: 2; font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 14px; }
.sedd-score span { white-space: pre; padding: 2px 1px; border-radius: 3px; color: #0f172a; }
"""


def score_view(pipe, text: str, points: int, seed: int, deadline=None) -> Tuple[str, str, go.Figure]:
    """(summary markdown, coloured tokens HTML, nats bar chart) for `text`; the pipeline checks the input."""
    score = pipe.score(text, points=points, seed=seed, deadline=deadline)
    top = max(score.nats)
    spans = "".join(
        f'<span style="background:{nats_colour(n, top)}" title="{html.escape(repr(t))}: {n:.2f} nats">'
        f"{html.escape(t)}</span>"
        for t, n in zip(score.tokens, score.nats)
    )
    summary = (f"**Perplexity bound: {score.perplexity:.2f}** · ELBO {score.total:.1f} nats over "
               f"{len(score.tokens)} tokens ({score.total / len(score.tokens):.2f} nats per token; "
               f"{points} quadrature time points, seed {seed}). Darker tokens cost more.")
    return summary, f'<div class="sedd-score">{spans}</div>', nats_bars(score.tokens, score.nats)
