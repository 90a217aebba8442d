"""The library refuses what it cannot use, with its own sentence (issue 20, item 8): no TypeError
from deep inside, no torch wording, nothing truncated or read as something else."""
import numpy as np
import pytest
import torch


def canvas(pipe):
    ids, fixed, _ = pipe.template("The river [[4]] sea.")
    return ids, fixed


BAD_RANK = {
    "None": (lambda ids: None, "candidates must be 1 to 16 rows"),
    "ragged": (lambda ids: [ids, ids[:-1]], "candidates must be 1 to 16 rows"),
    "floats": (lambda ids: [[float(i) + 0.5 for i in ids]], "whole-number token ids"),
    "a bool tensor": (lambda ids: torch.ones(1, len(ids), dtype=torch.bool), "whole-number token ids"),
    "a float array": (lambda ids: np.ones((1, len(ids))), "whole-number token ids"),
    "past the vocabulary": (lambda ids: [[10**6] * len(ids)], "whole-number token ids"),
    "no rows": (lambda ids: [], "candidates must be 1 to 16 rows"),
    "text": (lambda ids: "abc", "candidates must be 1 to 16 rows"),
    "against the canvas": (lambda ids: [[(i + 1) % 50 for i in ids]], "must keep the canvas's fixed tokens"),
}


@pytest.mark.parametrize("name", BAD_RANK)
def test_rank_refuses_what_is_not_a_fill_of_the_canvas(tiny_pipe, name):
    ids, fixed = canvas(tiny_pipe)
    make, message = BAD_RANK[name]
    with pytest.raises(ValueError, match=message):
        tiny_pipe.rank(ids, fixed, make(ids))


def test_rank_takes_tensors_arrays_and_lists_of_fills(tiny_pipe):
    ids, fixed = canvas(tiny_pipe)
    fill = [i if f else 7 for i, f in zip(ids, fixed)]
    for rows in ([fill], torch.tensor([fill]), np.array([fill])):
        assert tiny_pipe.rank(ids, fixed, rows, points=4)[0].ids == fill


@pytest.mark.parametrize("lengths, message", [
    (5, "gap lengths must be a list of whole numbers"),
    ([], "give 1 to 128 gap lengths"),
    (list(range(1, 1001)), "give 1 to 128 gap lengths"),
    ([1.5], "must be a whole number"),
])
def test_gap_search_refuses_bad_lengths(tiny_pipe, lengths, message):
    with pytest.raises(ValueError, match=message):
        tiny_pipe.gap_search("a", "b", lengths)


def test_controls_must_be_controls_and_settings_go_alone(tiny_pipe):
    ids, fixed = canvas(tiny_pipe)
    with pytest.raises(ValueError, match="controls must be a sedd_core.Controls"):
        tiny_pipe.stream(ids, fixed, controls="x")
    with pytest.raises(ValueError, match="give settings or steps, not both"):
        tiny_pipe.stream(ids, fixed, settings=tiny_pipe.settings(), steps=8)
    with pytest.raises(ValueError, match="the batch \\(candidates\\) must be a whole number from 1 to 16"):
        tiny_pipe.stream(ids, fixed, batch=17)
