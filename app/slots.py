"""The canvas value: a JSON list of slots, the one piece of editor state each visitor holds.

A slot is {"id": int | None, "text": str, "fixed": bool}. A masked slot has id None and is always
free. Slots that a run decided also carry "step" (when the sampler decided them) and "colour". An
anchored slot (a free slot whose token must start or end with some text: see sedd_core/template.py)
also carries "anchor": text and "side": "start" | "end", and keeps them when it is generated.
"""
from typing import List, Optional, Sequence, Tuple

import gradio as gr

from .colors import step_colour


def fail(message: str) -> gr.Error:
    """A message for the page (no traceback in the page or the log)."""
    return gr.Error(message[:1].upper() + message[1:], print_exception=False)


def masks(n: int) -> List[dict]:
    return [{"id": None, "text": "", "fixed": False} for _ in range(n)]


def token_slots(pipe, ids: Sequence[int], fixed: Sequence[bool], anchors: Optional[dict] = None) -> List[dict]:
    """Slots for a canvas (ids, fixed flags, anchors): free slots become masks, anchored ones marked."""
    pieces = pipe.pieces([i if f else pipe.mask_id for i, f in zip(ids, fixed)])
    out = [{"id": i, "text": p, "fixed": True} if f else masks(1)[0] for i, f, p in zip(ids, fixed, pieces)]
    for n, (side, text) in (anchors or {}).items():
        out[n] |= {"anchor": text, "side": side}
    return out


def text_slots(pipe, text) -> List[dict]:
    """Fixed slots spelling `text` (the pipeline checks the text)."""
    if text == "":
        raise fail("There is no text to add: type some text first.")
    ids = pipe.encode(text)
    return token_slots(pipe, ids, [True] * len(ids))


def preset(pipe, kind: str, before, after, gap) -> List[dict]:
    """Continue (before + gap), lead-in (gap + after) or infill (before + gap + after); an empty or
    missing text adds nothing."""
    head = [before] if kind != "lead_in" and before not in ("", None) else []
    tail = [after] if kind != "continue" and after not in ("", None) else []
    return token_slots(pipe, *pipe.compose(head + [gap] + tail))


def template_slots(pipe, template) -> List[dict]:
    """The canvas of a template such as "The un[[3]] dog [[2]]." (gaps, and words glued to them anchored)."""
    return token_slots(pipe, *pipe.template(template))


def check_length(slots: Sequence[dict], length: int):
    if len(slots) > length:
        raise fail(f"The canvas has {len(slots)} slots but the model takes at most {length}: delete some slots.")


def to_arrays(slots) -> Tuple[list, list, dict]:
    """The canvas JSON as (ids, fixed, anchors) for the pipeline, which checks what they hold."""
    shape = "The canvas must be a list of slots like {'id': 5, 'text': 'a', 'fixed': true}"
    if not isinstance(slots, list) or not all(isinstance(s, dict) for s in slots):
        raise fail(f"{shape}.")
    if not slots:
        raise fail("The canvas is empty: type some text or insert masked slots first.")
    for n, s in enumerate(slots):
        if not isinstance(s.get("fixed", False), bool):
            raise fail(f"{shape}: slot {n + 1} has fixed = {s['fixed']!r}, which is not true or false.")
        if s.get("id") is not None and (isinstance(s["id"], bool) or not isinstance(s["id"], int)):
            raise fail(f"{shape}: slot {n + 1} has id = {s['id']!r}, which is not a token id or null.")
    anchors = {n: (s.get("side"), s["anchor"]) for n, s in enumerate(slots) if s.get("anchor") is not None}
    return [s.get("id") for s in slots], [s.get("fixed", False) for s in slots], anchors


def frame_slots(pipe, start: Sequence[dict], tokens: Sequence[int], decided: Sequence[int], last: int) -> List[dict]:
    """The canvas for one row of a run: `start` slots (L,), sampled `tokens` (L,; ids past the vocabulary
    are masks), `decided` steps (L,; -1 never)."""
    pieces = pipe.pieces(tokens)
    out = []
    for slot, tok, piece, step in zip(start, tokens, pieces, decided):
        anchor = {k: slot[k] for k in ("anchor", "side") if k in slot}
        if slot.get("fixed"):
            out.append({"id": tok, "text": piece, "fixed": True})
        elif pipe.is_mask(tok):
            out.append(masks(1)[0] | anchor)
        elif step < 0:  # uniform graph: noise that no step has touched yet; or decided before the run
            out.append({"id": tok, "text": piece, "fixed": False} | anchor)
        else:
            out.append({"id": tok, "text": piece, "fixed": False, "step": step, "colour": step_colour(step, last)}
                       | anchor)
    return out
