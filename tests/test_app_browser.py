"""The editor in a real headless Chromium (Playwright): edit the canvas, generate, watch it stream."""
from pathlib import Path

import pytest


CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is absent (apt-get install chromium)")

CHIPS = "els => els.map(e => [e.dataset.kind, e.textContent])"  # (kind, text) of each chip
STATUS = "#status [data-testid=markdown]"  # the status line's text, without Gradio's progress timer
POLL = """() => {  // record every distinct canvas state (and when it appeared) while the run streams
  window.seen = []; window.t0 = performance.now();
  const sig = () => [...document.querySelectorAll('#canvas .sedd-chip')].map(e => e.dataset.kind + e.textContent).join('|');
  let last = sig();
  window.poll = setInterval(() => {
    const now = sig();
    if (now !== last) { window.seen.push([performance.now() - window.t0, now]); last = now; }
  }, 10);
}"""


@pytest.fixture(scope="module")
def page(editor_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 1000})
        page.goto(editor_url)
        page.wait_for_selector("#canvas .sedd-chips", timeout=60_000)
        yield page
        browser.close()


def chips(page):
    return page.eval_on_selector_all("#canvas .sedd-chip", CHIPS)


def add_text(page, text):
    before = len(chips(page))
    page.fill("#canvas .sedd-text", text)
    page.press("#canvas .sedd-text", "Enter")
    page.wait_for_function(f"document.querySelectorAll('#canvas .sedd-chip').length > {before}")


def insert_gap(page, n):
    page.fill("#canvas .sedd-n", str(n))
    page.click("#canvas button[data-act=gap]")


def fresh_canvas(page):
    """'The', 8 masked slots, ' fox.': a canvas of the test's own, so that each test also runs alone."""
    page.click("#canvas button[data-act=clear]")
    add_text(page, "The")
    insert_gap(page, 8)
    add_text(page, " fox.")


def test_edit_generate_and_watch_it_stream(page):
    page.click("#canvas button[data-act=clear]")
    assert chips(page) == []
    add_text(page, "The")
    insert_gap(page, 6)  # in the middle, at the caret
    add_text(page, " fox")
    insert_gap(page, 7)
    add_text(page, ".")
    page.click("#canvas .sedd-chips")  # focus the canvas; Home + g puts a gap at the very start
    page.keyboard.press("Home")
    page.fill("#canvas .sedd-n", "6")
    page.focus("#canvas .sedd-chips")
    page.keyboard.press("g")
    kinds = [k for k, _ in chips(page)]
    assert kinds[:7] == ["mask"] * 6 + ["fixed"] and kinds.count("mask") == 19 and kinds[-1] == "fixed"

    first_fixed = kinds.index("fixed")
    chip = page.locator("#canvas .sedd-chip").nth(first_fixed)
    chip.click()  # fixed -> free ...
    assert chips(page)[first_fixed][0] == "free"
    chip.click()  # ... and back
    assert chips(page)[first_fixed][0] == "fixed"
    fox = [i for i, k in enumerate(kinds) if k == "fixed"][1:-1]  # the chips of " fox", between two gaps
    page.locator("#canvas .sedd-chip").nth(fox[0]).click()  # free its first chip, shift-click its last:
    page.locator("#canvas .sedd-chip").nth(fox[-1]).click(modifiers=["Shift"])  # the range takes that state
    assert [chips(page)[i][0] for i in fox] == ["free"] * len(fox)
    page.click("#canvas button[data-act=fix]")  # fix the selected range again
    start = chips(page)
    assert [k for k, _ in start] == kinds

    assert page.get_by_label("first_hitting").is_checked()  # the default sampler of an absorbing model
    page.get_by_label("analytic", exact=True).check()
    steps = page.get_by_label("Steps")  # 1024 steps: 16 a frame, frames far enough apart to each be drawn
    steps.fill("1024")
    steps.press("Enter")
    page.evaluate(POLL)
    page.click("#generate")
    page.wait_for_function("document.querySelector('#status').innerText.includes('Done')", timeout=90_000)
    page.wait_for_timeout(300)
    seen = page.evaluate("clearInterval(window.poll) || window.seen")
    final = chips(page)
    changes = [t for t, state in seen]
    assert len(seen) >= 4, f"the canvas changed only {len(seen)} times during the run"  # 3+ times, then final
    for (kind, text), (kind2, text2) in zip(start, final):
        if kind == "fixed":
            assert (kind2, text2) == ("fixed", text)
        else:
            assert kind2 == "generated"
    print(f"\nclick -> first streamed frame {changes[0]:.0f} ms, -> final frame {changes[-1]:.0f} ms, "
          f"{len(seen)} canvas states; " + page.inner_text("#status"))
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "editor.png"), full_page=True)


def test_first_hitting_run_and_its_plots(page):
    fresh_canvas(page)
    page.get_by_label("first_hitting", exact=True).check()
    free = sum(k != "fixed" for k, _ in chips(page))
    page.click("#generate")
    page.wait_for_function("(s => s.includes('Done') && s.includes('(first_hitting)'))"
                           "(document.querySelector('#status').innerText)", timeout=90_000)
    assert f"{free} network calls" in page.inner_text("#status")
    page.wait_for_selector(".js-plotly-plot", timeout=30_000)
    assert page.locator(".js-plotly-plot").count() >= 2  # the heatmap and the masked slots against time
    page.screenshot(path=str(ARTIFACTS / "first_hitting.png"), full_page=True)


TOP_K = "#sampling input[aria-label='number input for Top-k']"


def test_sampling_presets(page):
    fresh_canvas(page)
    page.click("#sampling")  # open the accordion
    page.click("#sharper")
    page.wait_for_function(f"document.querySelector({TOP_K!r}).value === '50'", timeout=10_000)
    page.click("#generate")
    page.wait_for_function("(s => s.includes('Done') && s.includes('top-k 50'))"
                           "(document.querySelector('#status').innerText)", timeout=90_000)
    assert "(not exact)" in page.inner_text("#status")  # top-k 50 is said to be not exact
    page.click("#exact")
    page.wait_for_function(f"document.querySelector({TOP_K!r}).value === '0'", timeout=10_000)
    page.click("#generate")
    page.wait_for_function("(s => s.includes('Done') && !s.includes('top-k'))"
                           "(document.querySelector('#status').innerText)", timeout=90_000)
    assert "not exact" not in page.inner_text("#status")
    page.click("#sampling")  # closed again


def test_score_tab(page):
    page.get_by_role("tab", name="Score").click()
    page.get_by_role("button", name="Score", exact=True).click()
    page.wait_for_function("document.body.innerText.includes('Perplexity bound')", timeout=60_000)
    assert page.locator(".sedd-score span").count() >= 5
    page.screenshot(path=str(ARTIFACTS / "score.png"), full_page=True)


def set_number(page, elem_id, value):
    """Type a value into a Gradio slider's number box, as a person does."""
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def click_and_wait(page, button):
    """Click a button that starts a run and wait for that run's final status."""
    old = page.inner_text(STATUS)
    page.click(button)
    page.wait_for_function(f"old => (s => s !== old && s.startsWith('Done'))"
                           f"(document.querySelector({STATUS!r}).innerText)", arg=old, timeout=90_000)


def test_rank_branch_gap_search_and_undo(page):
    page.get_by_role("tab", name="Editor").click()
    page.wait_for_selector("#canvas .sedd-chips", state="visible")
    if not page.locator("#template textarea").is_visible():  # open the presets (whatever a test before left)
        page.get_by_text("Presets: continue, lead-in, infill, template").click()
    page.locator("#template textarea").fill("The [[5]] fox [[4]] end")
    page.click("#use_template")
    page.wait_for_function("document.querySelectorAll('#canvas .sedd-chip.mask').length === 9")
    page.get_by_label("first_hitting", exact=True).check()
    set_number(page, "batch", 4)
    click_and_wait(page, "#generate")
    page.wait_for_function("document.querySelectorAll('#candidates .sedd-cand i').length === 4")
    scores = [float(t.split()[0]) for t in page.locator("#candidates .sedd-cand i").all_inner_texts()]
    assert len(scores) == 4 and scores == sorted(scores)  # best first, each with its score
    page.screenshot(path=str(ARTIFACTS / "ranking.png"), full_page=True)

    set_number(page, "frame", 3)  # scrub back to frame 3, then continue from there with another seed
    page.wait_for_function("document.querySelector('#status').innerText.startsWith('Step 3 ')", timeout=30_000)
    decided = [text for kind, text in chips(page) if kind == "generated"]
    page.locator("#seed input").fill("7")
    click_and_wait(page, "#branch")
    assert "branch of run" in page.locator("#runs input").input_value()
    assert len(decided) == 3 and all(text in [t for _, t in chips(page)] for text in decided)
    page.screenshot(path=str(ARTIFACTS / "branch.png"), full_page=True)

    before = chips(page)
    page.get_by_label("Text before (prefix)").fill("The")  # the search reads the presets' texts
    page.get_by_label("Text after (suffix)").fill(" dog.")
    page.get_by_text("Gap of unknown length").click()
    page.click("#gap_search")
    page.wait_for_selector("#fills label", timeout=90_000)
    signature = "[...document.querySelectorAll('#canvas .sedd-chip')].map(e => e.dataset.kind + e.textContent).join('|')"
    old = page.evaluate(f"() => {signature}")  # before the click: the canvas may change at once
    page.locator("#fills label").first.click()
    page.wait_for_function(f"old => ({signature}) !== old", arg=old, timeout=30_000)
    kinds = [k for k, _ in chips(page)]
    assert chips(page) != before and kinds[0] == "fixed" and "free" in kinds and "mask" not in kinds  # the fill
    page.screenshot(path=str(ARTIFACTS / "gap_search.png"), full_page=True)

    page.focus("#canvas .sedd-chips")
    page.keyboard.press("Control+z")  # undo: back to the canvas before the fill was put in
    assert chips(page) == before
    page.keyboard.press("Control+Shift+z")
    assert chips(page) != before


BATCH = "#batch input[type=number]"


def test_stop_cancels_the_run_through_the_servers_door(page):
    """The page's Stop reaches the server's /cancel with its own session and event (app/guard.py lets
    exactly that through), the run stops and is recorded as far as it went (status, history, scrubber
    agree), and the next Generate runs."""
    fresh_canvas(page)
    page.get_by_label("analytic", exact=True).check()
    steps = page.get_by_label("Steps")
    steps.fill("1024")
    steps.press("Enter")
    page.fill(BATCH, "16")
    page.press(BATCH, "Enter")
    answers = []
    page.on("response", lambda r: answers.append(r.status) if r.url.endswith("/cancel") else None)
    page.click("#generate")
    page.wait_for_function(f"(m => m && +m[1] >= 34)(document.querySelector({STATUS!r}).innerText.match(/^Step (\\d+)/))",
                           timeout=90_000)  # a few frames kept (one every 17 steps), so there is a run to scrub
    page.click("#stop")
    page.wait_for_function(f"document.querySelector({STATUS!r}).innerText.startsWith('Stopped at step')",
                           timeout=30_000)
    page.wait_for_timeout(1000)
    assert answers == [200]
    stopped = page.inner_text(STATUS)
    page.wait_for_timeout(1000)
    assert page.inner_text(STATUS) == stopped and "recorded as far as it went" in stopped  # nothing runs on
    # the stopped run is the history's, as far as it went: its label says so, and scrubbing stays in it (issue 21)
    step = int(stopped.split("Stopped at step ")[1].split()[0])
    assert f"stopped at step {step} of 1025" in page.locator("#runs input").input_value()
    set_number(page, "frame", 0)
    page.wait_for_function(f"document.querySelector({STATUS!r}).innerText.startsWith('Step 0 of {step} (analytic, "
                           "1024 steps')", timeout=30_000)
    assert all(kind in ("fixed", "mask") for kind, _ in chips(page))
    page.fill(BATCH, "1")
    page.press(BATCH, "Enter")
    page.get_by_label("first_hitting", exact=True).check()
    page.click("#generate")
    page.wait_for_function("document.querySelector('#status').innerText.includes('Done')", timeout=60_000)


def test_after_an_error_the_canvas_stays_usable(page):
    """An error is a toast: nothing covers the canvas's toolbar, and a person keeps editing (issue 21)."""
    page.click("#canvas button[data-act=clear]")
    page.click("#generate")
    page.wait_for_selector("text=The canvas is empty", timeout=30_000)
    page.click("#canvas .sedd-text", timeout=5_000)  # a real click: it fails if an overlay covers the box
    page.keyboard.type("Hello there")
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelectorAll('#canvas .sedd-chip').length > 0", timeout=10_000)
    page.click("#canvas button[data-act=gap]", timeout=5_000)
    assert page.eval_on_selector_all("#canvas .status-tracker.error, #canvas .error", "e => e.length") == 0


def test_a_run_is_one_undo_step_whatever_is_clicked_during_it(page):
    """Clicks on the page, Stop's neighbourhood and keys during a streamed run do not split it (issue 21)."""
    fresh_canvas(page)
    before = chips(page)
    page.get_by_label("analytic", exact=True).check()
    steps = page.get_by_label("Steps")
    steps.fill("1024")
    steps.press("Enter")
    page.fill(BATCH, "16")  # slow enough to act while it streams
    page.press(BATCH, "Enter")
    page.click("#generate")
    page.wait_for_function("(s => s.includes('of 1025') && !s.includes('Done'))"
                           "(document.querySelector('#status').innerText)", timeout=60_000)
    page.mouse.click(5, 5)  # the page's margin
    page.keyboard.press("Shift")
    page.mouse.click(5, 300)
    page.wait_for_function("(s => s.includes('of 1025') && s.includes('Done'))"
                           "(document.querySelector('#status').innerText)", timeout=120_000)
    assert chips(page) != before
    page.click("#canvas button[data-act=undo]")
    assert chips(page) == before  # one Undo: the canvas before the run, not a half-masked frame
    page.fill(BATCH, "1")
    page.press(BATCH, "Enter")
    page.get_by_label("first_hitting", exact=True).check()


def test_generate_and_the_status_sit_under_the_canvas(page):
    """With the Sampling controls open, Generate, Stop and the status line stay next to the canvas."""
    page.get_by_role("tab", name="Editor").click()
    if page.locator("#sampling input").count() == 0 or not page.locator("#sampling input").first.is_visible():
        page.click("#sampling")
    bottom = page.locator("#canvas").bounding_box()
    for part in ("#generate", "#stop", "#status"):
        box = page.locator(part).bounding_box()
        assert 0 <= box["y"] - (bottom["y"] + bottom["height"]) < 120, part
    page.click("#sampling")  # closed again


MSG = "#canvas .sedd-msg"
EDITED = "Edited since the run: "
WATCH_STATUS = """() => {  // every status line shown while a run streams
  window.statuses = [];
  window.watcher = new MutationObserver(() => {
    const now = document.querySelector('#status [data-testid=markdown]').innerText;
    if (now !== window.statuses.at(-1)) window.statuses.push(now);
  });
  window.watcher.observe(document.querySelector('#status'), {subtree: true, childList: true, characterData: true});
}"""


def wait_for_status(page, start, timeout=10_000):
    """Wait until the status line starts with `start`."""
    page.wait_for_function(f"start => document.querySelector({STATUS!r}).innerText.startsWith(start)", arg=start,
                           timeout=timeout)


def test_notes_and_the_status_follow_the_canvas(page):
    """A note under the canvas goes when the canvas changes (an edit, an undo, a run); after a run, an edit
    says that the status line and the candidates are the run's, and a scrub shows the run again (issue item 8)."""
    fresh_canvas(page)
    page.locator("#canvas .sedd-chip.mask").first.click()
    assert page.inner_text(MSG) == "masked slots have no token: they stay free"
    insert_gap(page, 2)
    assert page.inner_text(MSG) == ""
    page.click("#canvas button[data-act=add]")  # nothing typed
    assert page.inner_text(MSG) == "type some text first"
    page.click("#canvas button[data-act=undo]")
    assert page.inner_text(MSG) == ""
    page.click("#canvas button[data-act=redo]")
    page.click("#canvas button[data-act=redo]")
    assert page.inner_text(MSG) == "nothing to redo"

    page.get_by_label("first_hitting", exact=True).check()
    page.evaluate(WATCH_STATUS)
    click_and_wait(page, "#generate")
    statuses = page.evaluate("window.watcher.disconnect() || window.statuses")
    run = statuses[[s.startswith(EDITED) for s in statuses].index(False):]  # from its first frame on
    assert len(run) > 1 and not any(s.startswith(EDITED) for s in run)  # its frames are not an edit
    assert page.inner_text(MSG) == ""  # the run cleared the note
    done = page.inner_text(STATUS)
    page.locator("#canvas .sedd-chip.fixed").first.click()  # fixed -> free, by hand
    wait_for_status(page, EDITED + done)
    assert page.inner_text("#candidates").startswith(EDITED)
    page.click("#canvas button[data-act=undo]")  # still the run's status: said once
    assert page.inner_text(STATUS) == EDITED + done

    set_number(page, "frame", 0)  # the scrubber shows the run again
    wait_for_status(page, "Step 0 ", timeout=30_000)
    assert EDITED not in page.inner_text("#candidates")
    add_text(page, " again")  # text the server adds counts as an edit
    wait_for_status(page, EDITED)


def wait_for_chips(page, chips, equal=True):
    """Wait until the canvas's chips are `chips` (or, equal=False, until they are not)."""
    page.wait_for_function(f"([want, equal]) => equal === (JSON.stringify(({CHIPS})("
                           "[...document.querySelectorAll('#canvas .sedd-chip')])) === JSON.stringify(want))",
                           arg=[chips, equal], timeout=10_000)


def test_a_candidates_card_shows_it_in_the_canvas(page):
    """A click on a card of the candidates panel does what picking that candidate in the picker does
    (issue item 9)."""
    fresh_canvas(page)
    page.get_by_label("first_hitting", exact=True).check()
    set_number(page, "batch", 3)
    click_and_wait(page, "#generate")
    page.wait_for_function("document.querySelectorAll('#candidates .sedd-cand i').length === 3")
    best = chips(page)
    card = page.locator("#candidates .sedd-cand").nth(1)  # the second best
    number = card.get_attribute("data-candidate")
    card.click()
    page.wait_for_function("n => document.querySelector('#shown input:checked')?.value === n", arg=number,
                           timeout=10_000)
    wait_for_chips(page, best, equal=False)
    second = chips(page)
    page.wait_for_function("n => document.querySelector('#candidates .sedd-cand.shown')?.dataset.candidate === n",
                           arg=number, timeout=10_000)
    assert card.get_attribute("title") == "show this candidate"
    assert card.evaluate("e => getComputedStyle(e).cursor") == "pointer"

    page.locator("#candidates .sedd-cand").nth(0).click()
    wait_for_chips(page, best)
    page.locator("#shown label").nth(1).click()  # the picker's own option gives the card's canvas
    wait_for_chips(page, second)
    page.locator("#canvas .sedd-chip.generated").first.click()  # edited: the card shown comes back on a click
    wait_for_status(page, EDITED)
    page.locator("#candidates .sedd-cand.shown").click()
    wait_for_chips(page, second)
    assert not page.inner_text(STATUS).startswith(EDITED)
    set_number(page, "batch", 1)


def test_generate_is_disabled_while_its_run_streams(page):
    """A second Generate during a run says so; Generate is back after Stop, an error and a finished run
    (issue item 12)."""
    fresh_canvas(page)
    page.get_by_label("analytic", exact=True).check()
    steps = page.get_by_label("Steps")
    steps.fill("1024")
    steps.press("Enter")
    set_number(page, "batch", 16)
    gen = page.locator("#generate")
    gen.click()
    page.wait_for_function("(s => s.includes('of 1025') && !s.includes('Done'))"
                           "(document.querySelector('#status').innerText)", timeout=60_000)
    gen.click(force=True)  # a second click while it streams
    assert gen.is_disabled() and gen.inner_text() == "Generating: wait, or press Stop"
    page.click("#stop")
    page.wait_for_function("!document.querySelector('#generate').disabled", timeout=10_000)
    assert gen.inner_text() == "Generate"

    page.click("#canvas button[data-act=clear]")
    gen.click()
    page.wait_for_selector("text=The canvas is empty", timeout=30_000)
    page.wait_for_function("!document.querySelector('#generate').disabled", timeout=10_000)
    fresh_canvas(page)
    set_number(page, "batch", 1)
    page.get_by_label("first_hitting", exact=True).check()
    click_and_wait(page, "#generate")
    page.wait_for_function("!document.querySelector('#generate').disabled", timeout=10_000)
    assert gen.inner_text() == "Generate"


def test_remask_is_offered_to_the_samplers_that_read_it(page):
    """Remask with each sampler (issue 21, item 5): enabled for analytic and Euler, disabled with a note
    (and back at 0) for the others; a run with it says so, and a sampler without it then runs."""
    fresh_canvas(page)
    page.fill(BATCH, "1")
    page.press(BATCH, "Enter")
    page.click("#sampling")  # open the accordion
    disabled = "document.querySelector('#remask input[type=number]').disabled === {}"
    for name, offered in (("first_hitting", False), ("confidence", False), ("euler", True), ("analytic", True)):
        page.get_by_label(name, exact=True).check()
        page.wait_for_function(disabled.format(str(not offered).lower()), timeout=10_000)
        note = f"document.querySelector('#remask').innerText.includes('does not apply to {name}')"
        page.wait_for_function(note if not offered else f"!{note}", timeout=10_000)
    steps = page.get_by_label("Steps")
    steps.fill("16")
    steps.press("Enter")
    set_number(page, "remask", 0.1)
    page.click("#generate")
    page.wait_for_function(f"(s => s.startsWith('Done') && s.includes('remask 0.1'))"
                           f"(document.querySelector({STATUS!r}).innerText)", timeout=90_000)
    assert "(not exact)" in page.inner_text(STATUS)
    page.get_by_label("first_hitting", exact=True).check()
    page.wait_for_function("document.querySelector('#remask input[type=number]').value === '0'", timeout=10_000)
    old = page.inner_text(STATUS)
    page.click("#generate")
    page.wait_for_function(f"old => (s => s !== old && s.startsWith('Done'))(document.querySelector({STATUS!r}).innerText)",
                           arg=old, timeout=90_000)
    assert "remask" not in page.inner_text(STATUS) and "first_hitting" in page.inner_text(STATUS)
    page.click("#sampling")  # closed again
