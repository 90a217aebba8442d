"""Exponential moving average of model parameters (the weights we export and sample with).

The decay warms up as min(decay, (1 + step) / (10 + step)), so a short run's average is not dragged
towards the random initial weights (with a fixed 0.999, 3.7% of them would remain after 3,300 steps).
"""
import torch


class EMA:
    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.shadow = {k: p.detach().clone().float() for k, p in model.named_parameters()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int):
        decay = min(self.decay, (1 + step) / (10 + step))
        for k, p in model.named_parameters():
            self.shadow[k].lerp_(p.detach().float(), 1 - decay)

    def copy_to(self, model: torch.nn.Module):
        """Load the averaged weights into `model` (buffers are left as they are)."""
        with torch.no_grad():
            for k, p in model.named_parameters():
                p.copy_(self.shadow[k])

    def state_dict(self):
        return {"decay": self.decay, "shadow": self.shadow}

    def load_state_dict(self, state):
        """Restore the average; the decay stays the one this run is configured with."""
        self.shadow = {k: v.clone() for k, v in state["shadow"].items()}
