// The canvas editor, run by gr.HTML's js_on_load with `element`, `trigger`, `props`, `watch`.
// props.value is the list of slots {id, text, fixed} (masked: id null; anchored: also anchor, side); the
// caret (insertion point), the selection and the undo history live only here. Chips are built with
// textContent, never as HTML. A change made here (and an undo or redo) triggers `input`, a change the
// server made (a run's frame, a preset, added text) does not.
const box = element.querySelector('.sedd-chips');
const input = element.querySelector('.sedd-text');
const gapInput = element.querySelector('.sedd-n');
const count = element.querySelector('.sedd-count');
const msg = element.querySelector('.sedd-msg');
let caret = null;   // insertion point in [0, n]; null means the end
let anchor = null;  // chip where a selection starts
let sel = null;     // selected chips [lo, hi], inclusive
let selFrom = null; // caret where a keyboard (Shift+arrow) selection began
let pending = null; // {at, before}: text sent to the server, to move the caret past it on return
const past = [];    // undo: earlier canvases (JSON), newest last; a streamed run counts as one change
const future = [];  // redo
let seen = JSON.stringify(props.value || []);  // the canvas as last drawn
let acted = true;   // the visitor asked for a change since the server last changed the canvas: a new undo step
// Only what can ask the server for a new canvas counts (an enabled button other than Stop, the scrubber, a
// picker, a candidate's card, a file, Enter in a field); a click on the page or a key pressed while a run
// streams does not, so a run stays one undo step.
const ASKS = 'button, input[type=range], input[type=radio], input[type=file], select, [role=listbox], [role=option], '
  + '[data-candidate]';
document.addEventListener('pointerdown', (e) => {
  const asks = e.target.closest && e.target.closest(ASKS);
  if (asks && !asks.disabled && !asks.closest('#stop')) acted = true;
}, true);
document.addEventListener('keydown', (e) => { if (e.key === 'Enter') acted = true; }, true);

const slots = () => (Array.isArray(props.value) ? props.value : []);
const at = () => (caret === null ? slots().length : Math.min(caret, slots().length));
const say = (text) => { msg.textContent = text || ''; };
// Newlines and tabs as arrows; a chip of spaces only as open boxes, so that it stays visible.
const shown = (t) => (/^ +$/.test(t) ? t.replace(/ /g, '\u2423') : t.replace(/\n/g, '\u21b5').replace(/\t/g, '\u21e5'));

function remember(previous) {
  past.push(previous);
  if (past.length > 200) past.shift();
  future.length = 0;
}

function commit(next, newCaret) {  // a change made here: an undo step; an earlier note no longer applies
  remember(seen);
  seen = JSON.stringify(next);
  props.value = next;
  caret = newCaret === undefined ? caret : newCaret;
  say('');
  render();
  trigger('input');
}

function render() {
  const s = slots();
  if (sel && sel[1] >= s.length) sel = null;
  const here = at();
  const nodes = [];
  for (let i = 0; i <= s.length; i++) {
    const gap = document.createElement('span');
    gap.className = 'sedd-gap' + (i === here ? ' caret' : '');
    gap.dataset.at = i;
    nodes.push(gap);
    if (i === s.length) break;
    const c = s[i];
    const kind = c.fixed ? 'fixed' : c.id === null || c.id === undefined ? 'mask' : c.colour ? 'generated' : 'free';
    const chip = document.createElement('span');
    chip.className = `sedd-chip ${kind}` + (sel && i >= sel[0] && i <= sel[1] ? ' selected' : '');
    chip.dataset.i = i;
    chip.dataset.kind = kind;
    if (kind !== 'mask') chip.textContent = shown(c.text || '');
    if (c.anchor) {  // a slot whose token must start (end) with the anchor text
      chip.classList.add('anchored');
      if (kind === 'mask') chip.textContent = c.side === 'end' ? `\u2026${shown(c.anchor)}` : `${shown(c.anchor)}\u2026`;
    }
    if (kind === 'generated') chip.style.background = c.colour;
    chip.title = (kind === 'mask' ? `slot ${i + 1}: masked (to generate)`
      : `slot ${i + 1}: ${JSON.stringify(c.text)} ${kind}` + (c.step !== undefined ? ` at step ${c.step}` : ''))
      + (c.anchor ? `; anchored: its token ${c.side === 'end' ? 'ends' : 'starts'} with ${JSON.stringify(c.anchor)}` : '');
    nodes.push(chip);
  }
  box.replaceChildren(...nodes);
  const fixed = s.filter((c) => c.fixed).length;
  const masked = s.filter((c) => c.id === null || c.id === undefined).length;
  count.textContent = `${s.length} / ${props.max_slots} slots \u00b7 ${fixed} fixed \u00b7 ${s.length - fixed} free (${masked} masked)`;
}

// Indices an action applies to: the selection, else `fallback` (a list of indices).
const targets = (fallback) => (sel ? range(sel[0], sel[1]) : fallback);
const range = (lo, hi) => Array.from({ length: hi - lo + 1 }, (_, k) => lo + k);

function setFixed(indices, fixed) {
  const s = slots().map((c) => ({ ...c }));
  let skipped = 0;
  for (const i of indices) {
    if (s[i].id === null || s[i].id === undefined) { skipped += fixed; continue; }
    s[i].fixed = fixed;
  }
  commit(s);
  if (skipped) say('masked slots have no token: they stay free');
}

function remove(indices) {
  if (!indices.length) return;
  const drop = new Set(indices);
  sel = null;
  commit(slots().filter((_, i) => !drop.has(i)), Math.min(...indices));
}

function insertGap() {
  const n = Math.max(1, Math.floor(Number(gapInput.value) || 1));
  const s = slots();
  if (s.length + n > props.max_slots) { say(`the canvas holds at most ${props.max_slots} slots`); return; }
  const here = at();
  const gap = Array.from({ length: n }, () => ({ id: null, text: '', fixed: false }));
  sel = null;
  commit([...s.slice(0, here), ...gap, ...s.slice(here)], here + n);
}

function addText() {
  if (!input.value) { say('type some text first'); input.focus(); return; }
  pending = { at: at(), before: slots().length };
  trigger('add_text', { text: input.value, at: at() });
  input.value = '';
  say('');
}

function toggle(i) {
  const c = slots()[i];
  if (c.id === null || c.id === undefined) { say('masked slots have no token: they stay free'); return; }
  setFixed([i], !c.fixed);
}

box.addEventListener('click', (e) => {
  const gap = e.target.closest('.sedd-gap');
  const chip = e.target.closest('.sedd-chip');
  box.focus();
  selFrom = null;
  if (gap) { caret = Number(gap.dataset.at); sel = null; render(); return; }
  if (!chip) return;
  const i = Number(chip.dataset.i);
  if (e.shiftKey && anchor !== null && anchor < slots().length) {  // a range takes the anchor's state
    sel = [Math.min(anchor, i), Math.max(anchor, i)];
    caret = sel[1] + 1;
    const state = slots()[anchor];
    if (state.id !== null && state.id !== undefined) setFixed(range(sel[0], sel[1]), state.fixed);
    else render();
    return;
  }
  anchor = i;
  sel = [i, i];
  caret = i + 1;
  toggle(i);
});

box.addEventListener('keydown', (e) => {
  const n = slots().length;
  const here = at();
  const move = (to) => {  // Shift extends the selection from where the caret was when Shift began
    to = Math.max(0, Math.min(n, to));
    if (e.shiftKey) {
      if (selFrom === null) selFrom = here;
      const lo = Math.min(selFrom, to);
      const hi = Math.max(selFrom, to) - 1;
      sel = hi >= lo ? [lo, hi] : null;
    } else { selFrom = null; sel = null; }
    caret = to;
    render();
  };
  if ((e.ctrlKey || e.metaKey) && (e.key === 'z' || e.key === 'Z' || e.key === 'y')) {
    e.preventDefault();
    if (e.key === 'y' || e.shiftKey) redo(); else undo();
    return;
  }
  const keys = {
    ArrowLeft: () => move(here - 1), ArrowRight: () => move(here + 1), Home: () => move(0), End: () => move(n),
    ' ': () => { const t = targets(here > 0 ? [here - 1] : []); if (t.length) setFixed(t, !t.every((i) => slots()[i].fixed)); },
    Enter: () => keys[' '](),
    f: () => setFixed(targets(range(0, n - 1)), true),
    u: () => setFixed(targets(range(0, n - 1)), false),
    g: insertGap,
    Backspace: () => remove(targets(here > 0 ? [here - 1] : [])),
    Delete: () => remove(targets(here < n ? [here] : [])),
    Escape: () => { sel = null; render(); },
  };
  if (keys[e.key] && !e.ctrlKey && !e.metaKey && !e.altKey) { e.preventDefault(); keys[e.key](); }
});

element.querySelector('.sedd-bar').addEventListener('click', (e) => {
  const act = e.target.closest('button')?.dataset.act;
  const all = range(0, slots().length - 1);
  const actions = {
    add: addText, gap: insertGap,
    fix: () => setFixed(targets(all), true), free: () => setFixed(targets(all), false),
    del: () => remove(targets(at() > 0 ? [at() - 1] : [])),
    clear: () => { sel = null; anchor = null; commit([], 0); },
    undo, redo,
  };
  if (actions[act]) actions[act]();
});
input.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); addText(); } });

function restore(from, to) {  // undo (from past to future) or redo (the other way)
  if (!from.length) { say('nothing to ' + (from === past ? 'undo' : 'redo')); return; }
  to.push(seen);
  seen = from.pop();
  sel = null;
  say('');
  props.value = JSON.parse(seen);
  render();
  trigger('input');
}
function undo() { restore(past, future); }
function redo() { restore(future, past); }

watch('value', () => {  // a new value from the server: a run's frame, a preset, or added text
  const now = JSON.stringify(props.value || []);
  if (now !== seen) {
    if (acted) remember(seen);  // the frames a run streams, with no action between them, are one change
    acted = false;
    seen = now;
    say('');  // a note was about the canvas before
  }
  if (pending) { caret = pending.at + Math.max(0, slots().length - pending.before); pending = null; }
  render();
});
render();
