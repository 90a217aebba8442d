"""The samplers, one algorithm per file, and the registry every other layer reads.

`SAMPLERS` maps a name to its `Sampler` (base.py): how it runs and its facts (exact, absorbing only,
takes steps, network calls, its own options, one line of help). The pipeline, the editor, the CLI,
the GPU-time estimate and `evaluate quality` keep no list of their own: adding a sampler is its file
and one entry here. The order is the editor's: the default first.
"""
from typing import Dict

from .base import Context, Sampler, SampleState, Scorer
from .confidence import CONFIDENCE
from .first_hitting import FIRST_HITTING
from .tau_leaping import ANALYTIC, EULER

SAMPLERS: Dict[str, Sampler] = {s.name: s for s in (FIRST_HITTING, ANALYTIC, EULER, CONFIDENCE)}


def available(absorbing: bool) -> tuple:
    """The names of the samplers a graph supports, the default first."""
    return tuple(name for name, s in SAMPLERS.items() if absorbing or not s.absorbing_only)


def get(name: str, absorbing: bool = True) -> Sampler:
    """The registry entry of `name`; ValueError naming the choices when there is none (for the graph)."""
    names = available(absorbing)
    if name not in names:
        raise ValueError(f"unknown sampler {name!r}: choose one of {', '.join(names)}")
    return SAMPLERS[name]


__all__ = ["SAMPLERS", "Context", "Sampler", "SampleState", "Scorer", "available", "get"]
