"""Exponential moving average of model parameters (the weights we export and sample with)."""
import torch


class EMA:
    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.shadow = {k: p.detach().clone().float() for k, p in model.named_parameters()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module):
        for k, p in model.named_parameters():
            self.shadow[k].lerp_(p.detach().float(), 1 - self.decay)

    def copy_to(self, model: torch.nn.Module):
        """Load the averaged weights into `model` (buffers are left as they are)."""
        with torch.no_grad():
            for k, p in model.named_parameters():
                p.copy_(self.shadow[k])

    def state_dict(self):
        return {"decay": self.decay, "shadow": self.shadow}

    def load_state_dict(self, state):
        self.decay = state["decay"]
        self.shadow = {k: v.clone() for k, v in state["shadow"].items()}
