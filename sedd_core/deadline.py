"""A time limit on a request, checked where all the work is: before every network call.

`Deadline(score_fn, when)` is the score function that refuses to start a call after `when` (a
`time.monotonic()` value) with `TimeUp`, so a request stops at most one network call past its limit,
whichever sampler, ranking or ELBO loop it is in. The pipeline's methods take `deadline=`.
"""
import time


class TimeUp(ValueError):
    """A request ran past its deadline; raised before the network call that would have started late."""


class Deadline:
    def __init__(self, score_fn, when: float):
        self.score_fn, self.when = score_fn, when
        self.selects_rows = getattr(score_fn, "selects_rows", False)
        self.time_independent = getattr(score_fn, "time_independent", False)

    def __call__(self, *args, **kwargs):
        if time.monotonic() > self.when:
            raise TimeUp("the request ran past its time limit and was stopped")
        return self.score_fn(*args, **kwargs)
