"""The canvas value: a JSON list of slots, the one piece of editor state each visitor holds.

A slot is {"id": int | None, "text": str, "fixed": bool}. A masked slot has id None and is always
free. Slots that a run decided also carry "step" (when the sampler decided them) and "colour".
"""
from typing import List, Sequence, Tuple

import gradio as gr

from .colors import step_colour

PRESETS = ("continue", "lead_in", "infill")


def fail(message: str) -> gr.Error:
    """A message for the page (no traceback in the page or the log)."""
    return gr.Error(message, print_exception=False)


def masks(n: int) -> List[dict]:
    return [{"id": None, "text": "", "fixed": False} for _ in range(n)]


def encode(pipe, text: str) -> List[int]:
    """Token ids of `text`; a clear error when the tokenizer cannot represent it exactly."""
    try:
        ids = pipe.tokenizer.encode(text)
    except (TypeError, ValueError) as err:  # e.g. lone surrogates, which are not valid Unicode text
        raise fail("The tokenizer cannot encode this text: it holds characters that are not valid Unicode "
                   "(a broken or half-pasted symbol). Remove them and try again.") from err
    if any(not 0 <= i < pipe.config.tokens for i in ids) or pipe.tokenizer.decode(ids) != text:
        raise fail("The tokenizer cannot encode this text exactly. Remove unusual characters and try again.")
    return ids


def text_slots(pipe, text: str) -> List[dict]:
    """Fixed slots spelling `text`."""
    if not text:
        raise fail("There is no text to add: type some text first.")
    ids = encode(pipe, text)
    return [{"id": i, "text": p, "fixed": True} for i, p in zip(ids, pipe.tokenizer.pieces(ids))]


def preset(pipe, kind: str, before: str, after: str, gap: int) -> List[dict]:
    """Continue (before + gap), lead-in (gap + after) or infill (before + gap + after)."""
    if kind not in PRESETS:
        raise fail(f"Unknown preset {kind!r}: expected one of {PRESETS}.")
    head = text_slots(pipe, before) if kind != "lead_in" else []
    tail = text_slots(pipe, after) if kind != "continue" else []
    slots = head + masks(int(gap)) + tail
    check_length(slots, pipe.length)
    return slots


def check_length(slots: Sequence[dict], length: int):
    if len(slots) > length:
        raise fail(f"The canvas has {len(slots)} slots but the model takes at most {length}: delete some slots.")


def to_arrays(slots, pipe) -> Tuple[List[int], List[bool]]:
    """Token ids and fixed flags (L,) for the sampler; free slots get id 0, which it ignores."""
    if not isinstance(slots, list) or not all(isinstance(s, dict) for s in slots):
        raise fail("The canvas must be a list of slots like {'id': 5, 'text': 'a', 'fixed': true}.")
    if not slots:
        raise fail("The canvas is empty: type some text or insert masked slots first.")
    check_length(slots, pipe.length)
    fixed = [bool(s.get("fixed")) for s in slots]
    ids = [s.get("id") if f else 0 for s, f in zip(slots, fixed)]
    for n, i in enumerate(ids):
        if not isinstance(i, int) or not 0 <= i < pipe.config.tokens:
            raise fail(f"Slot {n + 1} is fixed but holds no valid token: free it or delete it.")
    if all(fixed):
        raise fail("Every slot is fixed: free at least one slot (click a chip) or insert masked slots.")
    return ids, fixed


def frame_slots(pipe, start: Sequence[dict], tokens: Sequence[int], decided: Sequence[int], last: int) -> List[dict]:
    """The canvas for one row of a run: `start` slots (L,), sampled `tokens` (L,; ids past the vocabulary
    are masks), `decided` steps (L,; -1 never)."""
    vocab = pipe.config.tokens
    pieces = pipe.tokenizer.pieces([t if t < vocab else 0 for t in tokens])
    out = []
    for slot, tok, piece, step in zip(start, tokens, pieces, decided):
        if slot.get("fixed"):
            out.append({"id": tok, "text": piece, "fixed": True})
        elif tok >= vocab:
            out.extend(masks(1))
        elif step < 0:  # uniform graph: noise that no step has touched yet
            out.append({"id": tok, "text": piece, "fixed": False})
        else:
            out.append({"id": tok, "text": piece, "fixed": False, "step": step, "colour": step_colour(step, last)})
    return out
