"""The canvas: a gr.HTML component that edits a list of slots in the browser (no front-end build).

Its value is the JSON list described in `slots.py`. The browser side (canvas.html/.css/.js) draws the
chips, toggles fixed/free, selects ranges, inserts masked gaps and deletes; typed text goes to the
server through the `add_text` event, whose data is {text, at}.
"""
from pathlib import Path

import gradio as gr

from .colors import STEP_STOPS

HERE = Path(__file__).parent

from gradio.events import Dependency

class Canvas(gr.HTML):
    def __init__(self, max_slots: int, value=None, **kwargs):
        super().__init__(
            value=value or [],
            html_template=(HERE / "canvas.html").read_text(),
            css_template=(HERE / "canvas.css").read_text().replace("STEP_GRADIENT", ", ".join(STEP_STOPS)),
            js_on_load=(HERE / "canvas.js").read_text(),
            max_slots=max_slots,
            **kwargs,
        )

    def example_payload(self) -> list:
        return [{"id": 5, "text": "a", "fixed": True}, {"id": None, "text": "", "fixed": False}]

    def example_value(self) -> list:
        return self.example_payload()

    def api_info(self) -> dict:
        slot = {"type": "object", "properties": {
            "id": {"anyOf": [{"type": "integer"}, {"type": "null"}]}, "text": {"type": "string"}, "fixed": {"type": "boolean"}}}
        return {"type": "array", "items": slot}
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component