"""Command line sampling: `python -m sedd_core.cli [--prefix ...] [--suffix ...] [--infill "a [[8]] b"]`,
with the editor's samplers, defaults and sampling controls (temperature, top-k, top-p), and a flag for
each option a sampler of the registry has (remasking, the confidence measure, ...)."""
import argparse
import sys

from tqdm import tqdm

from .checks import DEFAULT_STEPS
from .controls import Controls
from .pipeline import SEDDPipeline
from .precision import PRECISIONS
from .samplers import SAMPLERS, options


def parser() -> argparse.ArgumentParser:
    d = Controls()
    p = argparse.ArgumentParser(prog="python -m sedd_core.cli", description=__doc__)
    p.add_argument("--model", default=None, help="model folder or hub id (default: the bundled model)")
    p.add_argument("--prefix", default="", help="text the sample starts with")
    p.add_argument("--suffix", default="", help="text the sample ends with")
    p.add_argument("--infill", default=None, help='template whose "[[N]]" gaps are filled, e.g. "A [[10]] B"')
    p.add_argument("--length", type=int, default=None, help="tokens per sample (default: the model's length)")
    p.add_argument("--predictor", choices=list(SAMPLERS), default=None,
                   help="; ".join(f"{n}: {s.help}" for n, s in SAMPLERS.items()) + " (default: the first the model has)")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                   help=f"calls of {', '.join(n for n, s in SAMPLERS.items() if s.takes_steps)}")
    p.add_argument("--batch", type=int, default=1, help="number of samples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=d.temperature, help="0: the argmax (not exact unless 1)")
    p.add_argument("--top-k", type=int, default=d.top_k, help="0: off; the editor's Sharper is 50")
    p.add_argument("--top-p", type=float, default=d.top_p, help="1: off")
    option_flags(p)
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="the network's: auto (bf16 where the hardware has it), fp32 or bf16")
    return p


def option_flags(p: argparse.ArgumentParser):
    """A flag for each option of the registry's samplers (default None: the sampler's own default)."""
    for name, default in options().items():
        which = [n for n, s in SAMPLERS.items() if name in s.options]
        p.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=None,
                       help=f"an option of {', '.join(which)} (default {default})")


def given_options(args) -> dict:
    """The sampler options the flags of `option_flags` set."""
    return {name: getattr(args, name) for name in options() if getattr(args, name) is not None}


def main(argv=None):
    p = parser()
    args = p.parse_args(argv)
    try:
        controls = Controls(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p)
        given = given_options(args)
        pipe = SEDDPipeline.from_pretrained(args.model, args.device, args.precision)
        canvas = pipe.template(args.infill) if args.infill is not None else pipe.canvas(args.prefix, args.suffix,
                                                                                         args.length)
        state = None
        with tqdm(desc="denoising", unit="call", file=sys.stderr) as bar:
            for state in pipe.stream(*canvas, steps=args.steps, predictor=args.predictor, seed=args.seed,
                                     batch=args.batch, controls=controls, **given):
                bar.total = state.last
                bar.update(state.step - bar.n)
    except (ValueError, FileNotFoundError, ConnectionError) as err:
        p.exit(2, f"error: {err}\n")
    for i, row in enumerate(state.tokens):
        print(f"=== sample {i} ===\n{pipe.tokenizer.decode(row.tolist())}")


if __name__ == "__main__":
    main()
