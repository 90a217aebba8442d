"""ZeroGPU: the model-bound handlers under `spaces.GPU` where the `spaces` package is importable.

On Hugging Face ZeroGPU hardware a GPU is attached to the Space only while a function wrapped by
`spaces.GPU(duration=...)` runs; `duration` is the most seconds one call may hold it (shorter asks
wait less in ZeroGPU's queue), a number or a function of the handler's inputs. `spaces` is installed
there; where it is installed on other hardware its decorator changes nothing, and where it is absent
`on_gpu` returns the handler itself. Gradio streams a handler's yields only when
`inspect.isgeneratorfunction` holds for it: `spaces.GPU` wraps a generator function in one of its own,
and `on_gpu` makes sure of it whatever the wrapper, so a streaming handler keeps streaming.

`generate_seconds`, `rank_seconds`, `branch_seconds`, `gap_search_seconds` and `score_seconds` give
such functions for the editor's handlers of those names (`sampling_seconds` serves any other sampling
handler): a start-up allowance plus a cost per sequence that goes through the network, estimated from
the request's inputs, never more than START + the editor's time limit.
"""
import inspect
import math
from functools import wraps

from sedd_core.samplers import SAMPLERS

START = 5.0  # seconds to attach the GPU and reach the first network call
PER_ROW = 0.02  # seconds per sequence through the network: sedd-small or sedd-medium at L <= 1024, with room


def on_gpu(handler, duration):
    """`spaces.GPU(duration=duration)(handler)` where `spaces` is importable, else `handler` itself."""
    try:
        import spaces
    except ImportError:
        return handler
    wrapped = spaces.GPU(handler, duration=duration)
    if inspect.isgeneratorfunction(handler) and not inspect.isgeneratorfunction(wrapped):
        @wraps(handler)
        def stream(*args, **kwargs):
            yield from wrapped(*args, **kwargs)
        return stream
    return wrapped


def seconds(rows: float, limit: float, per_row: float = PER_ROW) -> int:
    """GPU seconds for `rows` sequences through the network; at most START + `limit` (the editor stops a
    run at its time limit)."""
    return math.ceil(START + min(per_row * max(rows, 1), limit))


def sampling_seconds(slots, predictor, steps, candidates, limit: float, per_row: float = PER_ROW,
                     rows_per_candidate: float = 0.0) -> int:
    """GPU seconds to sample `candidates` for a canvas (and `rows_per_candidate` more sequences each):
    the sampler's registry entry gives its network calls, and each call runs `candidates` rows.
    Inputs it cannot read ask for the most (the handler refuses them)."""
    try:
        calls = SAMPLERS[predictor].calls(int(float(steps)), sum(not s.get("fixed", False) for s in slots))
        return seconds(int(float(candidates)) * (calls + rows_per_candidate), limit, per_row)
    except (AttributeError, KeyError, TypeError, ValueError, OverflowError):
        return seconds(math.inf, limit, per_row)


def generate_seconds(limit: float, per_row: float = PER_ROW):
    """duration(canvas, sampler, steps, seed, candidates, ...) for Editor.generate."""
    def duration(slots, predictor, steps, seed, candidates, *rest, **kwargs):
        return sampling_seconds(slots, predictor, steps, candidates, limit, per_row)
    return duration


def rank_seconds(limit: float, points: int, per_row: float = PER_ROW):
    """duration(canvas, sampler, steps, seed, candidates, ...) for Editor.rank: the sampling, then each
    candidate's ELBO at `points` points (a quarter more for noise schedules that start above 0)."""
    def duration(slots, predictor, steps, seed, candidates, *rest, **kwargs):
        return sampling_seconds(slots, predictor, steps, candidates, limit, per_row, 1.25 * points)
    return duration


def branch_seconds(limit: float, per_row: float = PER_ROW):
    """duration(canvas, history, frame, candidate, seed) for Editor.branch: the scrubbed run's sampler,
    steps and candidates (history.run.settings) on the canvas as it stands."""
    def duration(slots, history, *rest, **kwargs):
        try:
            run = history.run.settings.predictor, history.run.settings.steps, history.run.candidates
        except (AttributeError, IndexError, TypeError):
            return seconds(math.inf, limit, per_row)
        return sampling_seconds(slots, *run, limit, per_row)
    return duration


def gap_search_seconds(limit: float, most: int, tries: int = 2, points: int = 32, per_row: float = PER_ROW):
    """duration(before, after, shortest, longest, seed) for Editor.gap_search (and gap_choices): for each
    of at most `most` lengths n, `tries` first_hitting fills (n calls) and their ELBO at `points` points."""
    def duration(before, after, shortest, longest, seed, *rest, **kwargs):
        try:
            low = int(float(shortest))
            lengths = range(low, min(int(float(longest)), low + most - 1) + 1)
            return seconds(tries * sum(n + 1.25 * points for n in lengths), limit, per_row)
        except (TypeError, ValueError, OverflowError):
            return seconds(math.inf, limit, per_row)
    return duration


def score_seconds(limit: float, per_row: float = PER_ROW):
    """duration(text, points, seed, ...) for Editor.score: the ELBO runs `points` noised copies of the
    text (a quarter more for noise schedules that start above 0)."""
    def duration(text, points, seed, *rest, **kwargs):
        try:
            return seconds(1.25 * float(points), limit, per_row)
        except (TypeError, ValueError, OverflowError):
            return seconds(math.inf, limit, per_row)
    return duration
