"""The SEDD infill editor (Gradio): `build_demo(pipeline)` makes the page; `python app.py` serves it."""
from .ui import build_demo

__all__ = ["build_demo"]
