"""Command line sampling: `python -m sedd_core.sample [--prefix ...] [--suffix ...] [--infill "a [[8]] b"]`."""
import argparse
import sys

from tqdm import tqdm

from .pipeline import SEDDPipeline
from .precision import PRECISIONS
from .sampling import PREDICTORS


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m sedd_core.sample", description=__doc__)
    p.add_argument("--model", default=None, help="model folder or hub id (default: the bundled model)")
    p.add_argument("--prefix", default="", help="text the sample starts with")
    p.add_argument("--suffix", default="", help="text the sample ends with")
    p.add_argument("--infill", default=None, help='template whose "[[N]]" gaps are filled, e.g. "A [[10]] B"')
    p.add_argument("--length", type=int, default=None, help="tokens per sample (default: the model's length)")
    p.add_argument("--steps", type=int, default=128, help="tau-leaping steps (analytic, euler)")
    p.add_argument("--predictor", choices=PREDICTORS, default="analytic")
    p.add_argument("--batch", type=int, default=1, help="number of samples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="the network's: auto (bf16 where the hardware has it), fp32 or bf16")
    args = p.parse_args(argv)
    try:
        pipe = SEDDPipeline.from_pretrained(args.model, args.device, args.precision)
        canvas = pipe.template(args.infill) if args.infill is not None else pipe.canvas(args.prefix, args.suffix,
                                                                                         args.length)
        state = None
        with tqdm(desc="denoising", unit="call", file=sys.stderr) as bar:
            for state in pipe.stream(*canvas, steps=args.steps, predictor=args.predictor, seed=args.seed,
                                     batch=args.batch):
                bar.total = state.last
                bar.update(state.step - bar.n)
    except (ValueError, FileNotFoundError, ConnectionError) as err:
        p.exit(2, f"error: {err}\n")
    for i, row in enumerate(state.tokens):
        print(f"=== sample {i} ===\n{pipe.tokenizer.decode(row.tolist())}")


if __name__ == "__main__":
    main()
