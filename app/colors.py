"""Colours shared by the canvas chips and the plots: one scale from early to late sampler steps."""
from typing import List, Sequence, Tuple

# Early steps warm, late steps cool; every stop is light enough for dark text on top of it.
STEP_STOPS: Sequence[str] = ("#fbbf24", "#a3e635", "#34d399", "#38bdf8", "#a78bfa")
# Score view: low cost (few nats) pale, high cost deep red.
NATS_STOPS: Sequence[str] = ("#fff7ed", "#fdba74", "#f87171")


def _rgb(hex_colour: str) -> Tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))


def _mix(stops: Sequence[str], u: float) -> str:
    """The colour at fraction `u` in [0, 1] along `stops`, linearly interpolated in RGB."""
    u = min(max(u, 0.0), 1.0) * (len(stops) - 1)
    i = min(int(u), len(stops) - 2)
    a, b = _rgb(stops[i]), _rgb(stops[i + 1])
    r, g, bl = (round(x + (y - x) * (u - i)) for x, y in zip(a, b))
    return f"#{r:02x}{g:02x}{bl:02x}"


def step_colour(step: int, last: int) -> str:
    """Chip colour of a token decided at `step` of a run whose final step is `last`."""
    return _mix(STEP_STOPS, step / max(last, 1))


def nats_colour(nats: float, top: float) -> str:
    """Background of a token that costs `nats`, relative to the costliest token `top`."""
    return _mix(NATS_STOPS, nats / top if top > 0 else 0.0)


def plotly_scale(stops: Sequence[str] = STEP_STOPS) -> List[list]:
    """The same scale as a plotly colorscale: [[0, c0], ..., [1, cN]]."""
    return [[i / (len(stops) - 1), c] for i, c in enumerate(stops)]
