"""Noise schedules: total noise sigma(t) and its rate dsigma/dt, for t in [0, 1]."""
import math

import torch


class Noise:
    """Base class: `noise(t)` returns `(sigma(t), dsigma/dt(t))`, both shaped like `t`."""

    def total(self, t: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def inverse(self, sigma: torch.Tensor) -> torch.Tensor:
        """The time t at which the total noise is `sigma` (sigma is increasing in t)."""
        raise NotImplementedError

    def rate(self, t: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, t: torch.Tensor):
        return self.total(t), self.rate(t)


class LogLinear(Noise):
    """sigma(t) = -log(1 - (1 - eps) t): the fraction of masked tokens, 1 - exp(-sigma), is linear in t."""

    def __init__(self, eps: float = 1e-3):
        self.eps = eps

    def total(self, t):
        return -torch.log1p(-(1 - self.eps) * t)

    def rate(self, t):
        return (1 - self.eps) / (1 - (1 - self.eps) * t)

    def inverse(self, sigma):
        return -torch.expm1(-sigma) / (1 - self.eps)


class Geometric(Noise):
    """sigma(t) = sigma_min^(1-t) sigma_max^t."""

    def __init__(self, sigma_min: float, sigma_max: float):
        if not 0 < sigma_min < sigma_max:
            raise ValueError(f"geometric noise needs 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
        self.sigma_min, self.sigma_max = sigma_min, sigma_max

    def total(self, t):
        return self.sigma_min ** (1 - t) * self.sigma_max ** t

    def rate(self, t):
        return self.total(t) * (math.log(self.sigma_max) - math.log(self.sigma_min))

    def inverse(self, sigma):
        return (torch.log(sigma) - math.log(self.sigma_min)) / (math.log(self.sigma_max) - math.log(self.sigma_min))
