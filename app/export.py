"""Runs you can keep: a run as JSON (to replay, scrub, branch or regenerate it later) and as an animated
GIF of the canvas denoising.

The JSON names the model (its name and the SHA-256 of its config.json) and holds the start canvas,
the settings (sampler, steps, seed, candidates, sampling controls, the sampler's options), every recorded frame, the times and
counts behind the plots, and the candidates' ranking. The same model, canvas and settings regenerate the
identical final text.
"""
import math
from dataclasses import asdict
from typing import List

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from sedd_core import checks
from sedd_core.controls import Controls
from sedd_core.pipeline import Ranked

from .colors import step_colour
from .run import Frame, Run
from .slots import to_arrays

FORMAT = "sedd-run/2"  # 2: the sampler's options beside the controls


def max_file_bytes(length: int, batch: int, frames: int, states: int = 8 * 1025) -> int:
    """An upper bound on the size of a file this editor exports: `frames` frames of two (batch, length)
    arrays of numbers, counts and times for up to `states` sampler states, the start canvas, headroom."""
    return frames * batch * length * 2 * 8 + states * batch * 2 * 24 + length * 512 + 2**16


def to_json(pipe, run: Run) -> dict:
    s = run.settings
    settings = {"predictor": s.predictor, "steps": s.steps, "seed": run.seed, "candidates": run.candidates,
                "controls": asdict(s.controls), "options": dict(s.options)}
    ranking = [{k: v for k, v in asdict(r).items() if k != "ids"} for r in run.ranking]  # ids: the last frame's
    return {"format": FORMAT, "model": pipe.identity, "start": run.start, "settings": settings, "last": run.last,
            "masked": run.masked, "counts": run.counts, "times": run.times, "parent": run.parent,
            "at_frame": run.at_frame, "ranking": ranking,
            "frames": [{"step": f.step, "tokens": f.tokens.tolist(), "decided": f.decided.tolist(), "calls": f.calls}
                       for f in run.frames]}


class Damaged(ValueError):
    """What is wrong with an imported run file, in one sentence."""


def _need(ok: bool, what: str):
    if not ok:
        raise Damaged(f"the run file is damaged: {what}")


def _int(value, low, high, what) -> int:
    _need(isinstance(value, int) and not isinstance(value, bool) and low <= value <= high,
          f"{what} must be a whole number from {low:,} to {high:,}")
    return value


def _grid(rows, batch, kind, low, high, what) -> list:
    """A list of `batch` numbers per entry, each of `kind` in [low, high]."""
    def fits(v):
        if isinstance(v, bool) or not isinstance(v, kind):
            return False
        return math.isfinite(v) and low <= v <= high
    _need(isinstance(rows, list) and all(isinstance(r, list) and len(r) == batch and all(map(fits, r))
                                         for r in rows), what)
    return rows


def _tokens(value, shape, low, high, what) -> np.ndarray:
    """A (B, L) list of whole numbers in [low, high] as int64."""
    B, L = shape
    _need(isinstance(value, list) and len(value) == B
          and all(isinstance(r, list) and len(r) == L for r in value), f"{what} must be {B} rows of {L} numbers")
    _need(all(isinstance(v, int) and not isinstance(v, bool) and low <= v <= high for r in value for v in r),
          f"{what} must hold whole numbers from {low} to {high}")
    return np.asarray(value, dtype=np.int64).reshape(B, L)


def from_json(pipe, data, settings, max_frames: int) -> Run:
    """The run in `data` (parsed JSON of an exported file), checked whole: Damaged (a ValueError with
    one sentence) unless every part is what the editor itself records. `settings(predictor, steps,
    **controls_and_options)` is the editor's own check of a run's settings."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        older = isinstance(data, dict) and str(data.get("format", "")).startswith("sedd-run/")
        raise Damaged(f"this run was exported by another version of the editor ({str(data['format'])[:40]}); this "
                      f"one reads {FORMAT}: generate it again" if older else
                      f"this is not an exported run (expected \"format\": \"{FORMAT}\")")
    if data.get("model") != pipe.identity:
        name = data["model"].get("name") if isinstance(data.get("model"), dict) else None
        raise Damaged(f"this run was made with another model ({name!r}); the editor serves {pipe.name!r}")
    keys = {"format", "model", "start", "settings", "last", "masked", "counts", "times", "parent", "at_frame",
            "ranking", "frames"}
    _need(set(data) == keys, f"it must hold exactly the keys {', '.join(sorted(keys))}")
    start = data["start"]
    _need(isinstance(start, list) and all(isinstance(s, dict) for s in start), "its start canvas is not a list of slots")
    try:  # the start canvas must be one the editor could have run
        ids, fixed, anchors = to_arrays(start)
        pipe.check_canvas(ids, fixed, anchors)
    except ValueError as err:
        raise Damaged(f"the run file is damaged: its start canvas is refused: {err}") from err
    raw = data["settings"]
    _need(isinstance(raw, dict) and set(raw) == {"predictor", "steps", "seed", "candidates", "controls", "options"}
          and isinstance(raw["controls"], dict) and isinstance(raw["options"], dict),
          "its settings must hold predictor, steps, seed, candidates, controls, options")
    _need(set(raw["controls"]) <= set(Controls.__dataclass_fields__) and not set(raw["controls"]) & set(raw["options"]),
          "its sampling controls are not the editor's")
    try:
        checked = settings(raw["predictor"], raw["steps"], **raw["controls"], **raw["options"])
        seed, B = checks.seed(raw["seed"]), checks.batch(raw["candidates"])
    except (TypeError, ValueError) as err:
        raise Damaged(f"the run file is damaged: its settings are refused: {err}") from err
    L = len(start)
    last = _int(data["last"], 0, 10**6, "last")
    _need(isinstance(data["masked"], bool), "masked must be true or false")
    frames_in = data["frames"]
    _need(isinstance(frames_in, list) and 1 <= len(frames_in) <= max_frames,
          f"it must hold 1 to {max_frames} frames")
    frames, before = [], (-1, 0)
    for n, f in enumerate(frames_in):
        _need(isinstance(f, dict) and set(f) == {"step", "tokens", "decided", "calls"},
              f"frame {n} must hold step, tokens, decided and calls")
        step, calls = _int(f["step"], 0, last, f"frame {n}'s step"), _int(f["calls"], 0, 10**9, f"frame {n}'s calls")
        _need(step > before[0] and calls >= before[1], "its frames' steps must rise (and calls never fall)")
        before = (step, calls)
        frames.append(Frame(step, _tokens(f["tokens"], (B, L), 0, pipe.mask_id - (not pipe.absorbing), f"frame {n}'s tokens"),
                            _tokens(f["decided"], (B, L), -1, last, f"frame {n}'s decided steps"), calls))
    _need(frames[-1].step == last, "its last frame must be the run's last step")
    counts = _grid(data["counts"], B, int, 0, L, "counts must be a list of per-candidate slot counts")
    times = _grid(data["times"], B, (int, float), 0.0, 1.0, "times must be a list of per-candidate times in [0, 1]")
    _need(len(counts) == len(times) == last + 1, f"counts and times must hold {last + 1} entries each")
    parent, at_frame = data["parent"], data["at_frame"]
    _need((parent is None) == (at_frame is None), "parent and at_frame go together")
    if parent is not None:
        _int(parent, 0, 10**6, "parent")
        _int(at_frame, 0, 10**6, "at_frame")
    ranking = data["ranking"]
    _need(isinstance(ranking, list) and len(ranking) in (0, B), f"its ranking must list 0 or {B} candidates")
    for r in ranking:
        _need(isinstance(r, dict) and set(r) == {"index", "text", "slots", "nats_per_slot", "stderr"}
              and isinstance(r["text"], str), "each ranked candidate must hold index, text, slots, nats_per_slot, stderr")
        _int(r["index"], 0, B - 1, "a ranked candidate's index")
        _int(r["slots"], 0, L, "a ranked candidate's slots")
        _grid([[r["nats_per_slot"], r["stderr"]]], 2, (int, float), -1e9, 1e9, "a ranked candidate's score")
    _need(sorted(r["index"] for r in ranking) == list(range(len(ranking))), "its ranking must list each candidate once")
    final = frames[-1].tokens.tolist()
    ranking = [Ranked(r["index"], final[r["index"]], r["text"], r["slots"], r["nats_per_slot"], r["stderr"])
               for r in ranking]
    return Run(start, checked, seed, B, last, data["masked"], frames, counts, times, parent, at_frame, ranking)


def gif(pipe, run: Run, row: int, path: str, width: int = 960) -> str:
    """An animated GIF of candidate `row` denoising: masks grey, tokens coloured by the step that decided
    them, fixed text dark, a token's newline a line break; one image per recorded frame (the last one
    held longer)."""
    font = ImageFont.load_default(size=20)
    images: List[Image.Image] = []
    for f in run.frames:
        images.append(_draw(pipe, run, f, row, font, width))
    height = max(im.height for im in images)
    images = [_pad(im, height) for im in images]
    images[0].save(path, save_all=True, append_images=images[1:], duration=[120] * (len(images) - 1) + [2000],
                   loop=0, optimize=False)
    return path


def _draw(pipe, run, frame, row, font, width) -> Image.Image:
    tokens, decided = frame.tokens[row].tolist(), frame.decided[row].tolist()
    pieces = pipe.pieces(tokens)
    chips, x, y, line = [], 10, 10, 30
    for slot, tok, piece, step in zip(run.start, tokens, pieces, decided):
        text = " " * 3 if pipe.is_mask(tok) else piece.replace("\n", "") or " "
        w = int(font.getlength(text)) + 8
        if x + w > width - 10:
            x, y = 10, y + line + 6
        fill = "#1e293b" if slot.get("fixed") else "#e2e8f0" if pipe.is_mask(tok) else (
            step_colour(step, run.last) if step >= 0 else "#ffffff")
        chips.append((x, y, w, text, fill, "#f8fafc" if slot.get("fixed") else "#0f172a"))
        x += w + 3
        if not pipe.is_mask(tok) and "\n" in piece:  # the text breaks its line here: so does the picture
            x, y = 10, y + (line + 6) * piece.count("\n")
    image = Image.new("RGB", (width, y + line + 14), "#ffffff")
    draw = ImageDraw.Draw(image)
    for x, y, w, text, fill, ink in chips:
        draw.rounded_rectangle((x, y, x + w, y + line), radius=5, fill=fill)
        draw.text((x + 4, y + 4), text, font=font, fill=ink)
    return image


def _pad(image, height) -> Image.Image:
    if image.height == height:
        return image
    out = Image.new("RGB", (image.width, height), "#ffffff")
    out.paste(image, (0, 0))
    return out
