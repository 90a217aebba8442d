"""A training run's newest complete checkpoint as a model: its objective and EMA weights.

What the model card and the AR export measure and ship when the run itself has not exported (an AR
run started before the AR baseline was exported during training still holds only checkpoints).
"""
from pathlib import Path

from sedd_core.tokenizer import TextTokenizer

from .config import load_config
from .objectives import for_training
from .state import load_latest
from .tokenizer import resolve_tokenizer


def from_run(run: Path):
    """(objective, model with the EMA weights in eval mode, tokenizer.json path, step) of `run`."""
    run = Path(run)
    cfg = load_config(str(run / "train_config.json"))
    state = load_latest(run / "checkpoints")
    if state is None:
        raise FileNotFoundError(f"{run} has no complete checkpoint")
    tok, tokenizer_file = resolve_tokenizer(cfg.data)
    if tok.get_vocab_size() != state["tokens"]:
        raise ValueError(f"the run's tokenizer has {tok.get_vocab_size()} tokens but its checkpoint {state['tokens']}")
    objective = for_training(cfg, state["tokens"], TextTokenizer(tok).eos_id)
    model = objective.build()
    model.load_state_dict(state["model"] | state["ema"]["shadow"])  # the averaged weights over the raw ones
    return objective, model.eval(), tokenizer_file, state["step"]
