"""The candidates panel: each candidate of a run as plain text at one frame, the shown one highlighted;
after a ranked run, best first with the model's score of each (nats per free slot, with its error). A click
on a candidate's card shows it in the canvas, as the candidate picker does (JS)."""
import html

MASK_GLYPH = "\u2591"  # a masked (undecided) slot

CSS = """
.sedd-cands { display: grid; gap: 6px; }
.sedd-cand { padding: 6px 10px; border: 1px solid #e2e8f0; border-radius: 6px; white-space: pre-wrap; font-size: 14px;
             cursor: pointer; }
.sedd-cand:hover { border-color: #93c5fd; }
.sedd-cand.shown { border-color: #2563eb; background: #eff6ff; }
.sedd-cand b { color: #475569; margin-right: 8px; }
.sedd-cand i { color: #7c3aed; font-style: normal; font-size: 12px; margin-right: 8px; }
.sedd-note { color: #475569; font-size: 13px; margin: 0 0 4px; }
.sedd-stale { color: #b45309; font-weight: 600; }
.sedd-stale + .sedd-cands { opacity: 0.7; }
"""
# A click on a card clicks the picker's option of its candidate, so that the picker's own event shows it; the
# option already picked gets its input event again, so that the card shown comes back after an edit.
JS = """
element.addEventListener('click', (e) => {
  const card = e.target.closest('[data-candidate]');
  const option = card && document.querySelector(`#shown input[value="${card.dataset.candidate}"]`);
  if (!option || option.disabled) return;
  if (option.checked) option.dispatchEvent(new Event('input', { bubbles: true }));
  else option.click();
});
"""
STALE = ('<p class="sedd-note sedd-stale">Edited since the run: these are the run\'s candidates; click one to show '
         "it in the canvas again.</p>")  # put before the panel when the canvas was edited (ui.py)


def candidate_text(pipe, tokens) -> str:
    """Decoded text of one row (L,); masked slots as a shaded glyph."""
    return pipe.decode(tokens, MASK_GLYPH)


def candidates_html(pipe, run, frame: int, shown: int) -> str:
    rows = run.frames[frame].tokens.tolist()  # (B, L)
    scores = {r.index: r for r in run.ranking} if frame == len(run.frames) - 1 else {}
    order = [r.index for r in run.ranking] if scores else range(len(rows))
    items = "".join(
        f'<div class="sedd-cand{" shown" if b == shown else ""}" data-candidate="{b + 1}" title="show this candidate">'
        f'<b>{rank_word(n) + " · " if scores else ""}'
        f'candidate {b + 1}</b>'
        + (f'<i>{scores[b].nats_per_slot:.2f} &plusmn; {scores[b].stderr:.2f} nats/slot</i>' if scores else "")
        + f"{html.escape(candidate_text(pipe, rows[b]))}</div>"
        for n, b in enumerate(order)
    )
    note = ('<p class="sedd-note">Best first by the model\'s own score of the filled slots: fewer nats per '
            "slot is more likely. Click a candidate to show it in the canvas.</p>" if scores else "")
    return f'<div class="sedd-cands">{note}{items}</div>'


def rank_word(n: int) -> str:
    """1st, 2nd, 3rd, 4th, ... for 0, 1, 2, 3, ..."""
    n += 1
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def choices(run) -> list:
    """(label, candidate number) for the picker, best first after a ranked run."""
    if not run.ranking:
        return [(f"#{b + 1}", b + 1) for b in range(run.frames[0].tokens.shape[0])]
    return [(f"{rank_word(n)}: candidate {r.index + 1} · {r.nats_per_slot:.2f} nats/slot", r.index + 1)
            for n, r in enumerate(run.ranking)]
