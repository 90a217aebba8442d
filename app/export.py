"""Runs you can keep: a run as JSON (to replay, scrub, branch or regenerate it later) and as an animated
GIF of the canvas denoising.

The JSON names the model (its name and the SHA-256 of its config.json) and holds the start canvas,
the settings (sampler, steps, seed, candidates, sampling controls), every recorded frame, the times and
counts behind the plots, and the candidates' ranking. The same model, canvas and settings regenerate the
identical final text.
"""
import hashlib
import json
from dataclasses import asdict
from typing import List

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from sedd_core.controls import Controls

from .colors import step_colour
from .run import Frame, Run

FORMAT = "sedd-run/1"


def model_id(pipe) -> dict:
    config = json.dumps(pipe.config.to_dict(), sort_keys=True).encode()
    return {"name": pipe.name, "config_sha256": hashlib.sha256(config).hexdigest()}


def to_json(pipe, run: Run) -> dict:
    settings = {**run.settings, "controls": asdict(run.settings["controls"])}
    return {"format": FORMAT, "model": model_id(pipe), "start": run.start, "settings": settings, "last": run.last,
            "masked": run.masked, "counts": run.counts, "times": run.times, "parent": run.parent,
            "at_frame": run.at_frame, "ranking": run.ranking,
            "frames": [{"step": f.step, "tokens": f.tokens.tolist(), "decided": f.decided.tolist(), "calls": f.calls}
                       for f in run.frames]}


def from_json(pipe, data) -> Run:
    """The run in `data` (a dict read from an exported file); ValueError when it is not one, or when it
    was made with another model."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"this is not an exported run (expected \"format\": \"{FORMAT}\")")
    if data.get("model") != model_id(pipe):
        raise ValueError(f"this run was made with another model ({data.get('model', {}).get('name')!r}); "
                         f"the editor serves {pipe.name!r}")
    try:
        settings = {**data["settings"], "controls": Controls(**data["settings"]["controls"])}
        frames = [Frame(f["step"], np.asarray(f["tokens"], dtype=np.int64), np.asarray(f["decided"], dtype=np.int64),
                        f["calls"]) for f in data["frames"]]
        run = Run(data["start"], settings, data["last"], data["masked"], frames, data["counts"], data["times"],
                  data["parent"], data["at_frame"], data["ranking"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"the run file is damaged: {err}") from err
    if not frames or any(f.tokens.shape != frames[0].tokens.shape for f in frames):
        raise ValueError("the run file is damaged: its frames are missing or of different sizes")
    return run


def gif(pipe, run: Run, row: int, path: str, width: int = 720) -> str:
    """An animated GIF of candidate `row` denoising: masks grey, tokens coloured by the step that decided
    them, fixed text dark; one image per recorded frame (the last one held longer)."""
    font = ImageFont.load_default(size=16)
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
    vocab = pipe.config.tokens
    pieces = pipe.tokenizer.pieces([t if t < vocab else 0 for t in tokens])
    chips, x, y, line = [], 8, 8, 24
    for slot, tok, piece, step in zip(run.start, tokens, pieces, decided):
        text = " " * 3 if tok >= vocab else piece.replace("\n", "\u21b5") or " "
        w = int(font.getlength(text)) + 6
        if x + w > width - 8:
            x, y = 8, y + line + 4
        fill = "#1e293b" if slot.get("fixed") else "#e2e8f0" if tok >= vocab else (
            step_colour(step, run.last) if step >= 0 else "#ffffff")
        chips.append((x, y, w, text, fill, "#f8fafc" if slot.get("fixed") else "#0f172a"))
        x += w + 2
    image = Image.new("RGB", (width, y + line + 12), "#ffffff")
    draw = ImageDraw.Draw(image)
    for x, y, w, text, fill, ink in chips:
        draw.rounded_rectangle((x, y, x + w, y + line), radius=4, fill=fill)
        draw.text((x + 3, y + 3), text, font=font, fill=ink)
    return image


def _pad(image, height) -> Image.Image:
    if image.height == height:
        return image
    out = Image.new("RGB", (image.width, height), "#ffffff")
    out.paste(image, (0, 0))
    return out
