"""`python app.py [--model PATH_OR_HUB_ID] [--port N] [--host H] [--share] [--device D] [--precision P]`: serve the editor.

Without flags the environment decides: SEDD_MODEL (the model), GRADIO_SERVER_NAME and GRADIO_SERVER_PORT
(which Hugging Face Spaces set), else the bundled model on 127.0.0.1:7860.
"""
import argparse
import math
import os
import sys

import torch

from sedd_core import SEDDPipeline
from sedd_core.precision import PRECISIONS

from .events import TIME_LIMIT
from .ui import serve

LOAD_ERRORS = (FileNotFoundError, ConnectionError, ValueError, OSError, RuntimeError, KeyError)


def seconds(text: str) -> float:
    """A time limit: a finite number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds (--time-limit or $SEDD_TIME_LIMIT), got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds above 0, got {text!r}")
    return value


def port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port lies from 1 to 65535, got {value}")
    return value


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python app.py", description="The SEDD infill editor (Gradio).")
    p.add_argument("--model", default=os.environ.get("SEDD_MODEL"),
                   help="model folder or hub id (default: $SEDD_MODEL, else the bundled model)")
    p.add_argument("--port", type=port, default=None, help="default: $GRADIO_SERVER_PORT, else 7860")
    p.add_argument("--host", default=None,
                   help="address to listen on, 0.0.0.0 for every interface (default: $GRADIO_SERVER_NAME, else 127.0.0.1)")
    p.add_argument("--share", action="store_true", help="also serve through a public gradio.live link")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda when present, else cpu)")
    p.add_argument("--precision", choices=PRECISIONS, default=os.environ.get("SEDD_PRECISION", "auto"),
                   help="the network's: auto (bf16 where the hardware multiplies it natively), fp32 or bf16 "
                        "(default: $SEDD_PRECISION, else auto)")
    p.add_argument("--time-limit", type=seconds, default=os.environ.get("SEDD_TIME_LIMIT", str(TIME_LIMIT)),
                   help=f"seconds one request that runs the model may take (default: $SEDD_TIME_LIMIT, else "
                        f"{TIME_LIMIT:g})")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        kind = torch.device(device).type
    except RuntimeError:
        print(f"error: unknown device {device!r}: use cpu, cuda or cuda:N", file=sys.stderr)
        return 2
    if kind == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda asked for, but no CUDA device is available here: use --device cpu", file=sys.stderr)
        return 2
    print(f"loading {args.model or 'the bundled model'} on {device} ...", flush=True)
    try:
        pipe = SEDDPipeline.from_pretrained(args.model, device=device, precision=args.precision)
    except LOAD_ERRORS as err:
        print(f"error: cannot load the model {args.model or '(bundled)'}: {err}", file=sys.stderr)
        return 2
    print(f"model ready: {pipe.summary}, {pipe.precision}", flush=True)
    serve(pipe, args.time_limit, server_name=args.host, server_port=args.port, share=args.share)
    return 0
