"""Exponential moving average of model parameters (the weights we export and sample with).

The decay warms up as min(decay, (1 + step) / (10 + step)), so a short run's average is not dragged
towards the random initial weights (with a fixed 0.999, 3.7% of them would remain after 3,300 steps).
Under FSDP each process averages only its own shard; `full()` gathers the whole average.
"""
import torch

from .sharding import full_tensor, shard_like


class EMA:
    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.shadow = {k: p.detach().clone().float() for k, p in model.named_parameters()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int):
        decay = min(self.decay, (1 + step) / (10 + step))
        for k, p in model.named_parameters():
            self.shadow[k].lerp_(p.detach().float(), 1 - decay)

    def full(self) -> dict:
        """The whole averaged weights on every process (a collective under FSDP)."""
        return {k: full_tensor(v) for k, v in self.shadow.items()}

    @staticmethod
    @torch.no_grad()
    def copy_to(model: torch.nn.Module, full: dict):
        """Load gathered averaged weights `full` into an unsharded `model` (buffers stay as they are)."""
        for k, p in model.named_parameters():
            p.copy_(full[k])

    def state_dict(self, full: dict):
        """For a checkpoint, from the gathered `full()`."""
        return {"decay": self.decay, "shadow": {k: v.cpu() for k, v in full.items()}}

    def load_state_dict(self, state):
        """Restore the average in this process's layout; the decay stays the one this run is configured with."""
        self.shadow = {k: shard_like(state["shadow"][k], like) for k, like in self.shadow.items()}
