"""The candidates panel: each candidate of a run as plain text at one frame, the shown one highlighted."""
import html

MASK_GLYPH = "\u2591"  # a masked (undecided) slot

CSS = """
.sedd-cands { display: grid; gap: 6px; }
.sedd-cand { padding: 6px 10px; border: 1px solid #e2e8f0; border-radius: 6px; white-space: pre-wrap; font-size: 14px; }
.sedd-cand.shown { border-color: #2563eb; background: #eff6ff; }
.sedd-cand b { color: #475569; margin-right: 8px; }
"""


def candidate_text(pipe, tokens) -> str:
    """Decoded text of one row (L,); masked slots (ids past the vocabulary) as a shaded glyph."""
    vocab = pipe.config.tokens
    if max(tokens) < vocab:
        return pipe.tokenizer.decode(tokens)
    return "".join(MASK_GLYPH if t >= vocab else p for t, p in zip(tokens, pipe.tokenizer.pieces(
        [0 if t >= vocab else t for t in tokens])))


def candidates_html(pipe, run, frame: int, shown: int) -> str:
    rows = run.frames[frame].tokens.tolist()  # (B, L)
    items = "".join(
        f'<div class="sedd-cand{" shown" if b == shown else ""}"><b>#{b + 1}</b>'
        f"{html.escape(candidate_text(pipe, row))}</div>"
        for b, row in enumerate(rows)
    )
    return f'<div class="sedd-cands">{items}</div>'
