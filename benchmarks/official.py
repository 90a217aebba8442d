"""A straightforward implementation of the official SEDD analytic step, for timing against ours.

It does what the reference code's AnalyticPredictor does, tensor for tensor: the full (B, L, V) score
exp(model(x, sigma)), the staggered score (a clone plus an in-place update of the mask column), the
transposed transition built from an int64 one_hot over V, their product, and a float32 Gumbel-max draw.
Not used for sampling anywhere: it exists so that benchmarks can time the same step on the same weights.
"""
import torch
import torch.nn.functional as F


def staggered_score(score, dsigma):  # absorbing graph: score (B, L, V), dsigma (B, 1)
    score = score.clone()
    extra = (1 - dsigma.exp()) * score.sum(dim=-1)
    score *= dsigma.exp()[:, None]
    score[..., -1] += extra
    return score


def transp_transition(i, sigma, dim):  # absorbing graph: i (B, L), sigma (B, 1) -> (B, L, V)
    sigma = sigma[..., None]
    edge = torch.exp(-sigma) * F.one_hot(i, num_classes=dim)
    edge += torch.where(i == dim - 1, 1 - torch.exp(-sigma).squeeze(-1), 0)[..., None]
    return edge


def sample_categorical(probs):  # float32 Gumbel-max, as the reference code
    gumbel_norm = 1e-10 - (torch.rand_like(probs) + 1e-10).log()
    return (probs / gumbel_norm).argmax(dim=-1)


@torch.no_grad()
def analytic_step(model, noise, x, t, step_size):
    """One analytic step of every slot of x (B, L) from time t (B, 1) to t - step_size."""
    sigma, next_sigma = noise.total(t), noise.total(t - step_size)
    dsigma = sigma - next_sigma
    score = model(x, sigma.reshape(-1)).exp()
    probs = staggered_score(score, dsigma) * transp_transition(x, dsigma, score.shape[-1])
    return sample_categorical(probs)


@torch.no_grad()
def infill(model, noise, x, fixed, steps, eps=1e-5):
    """The official sampler's loop with its projector for fixed tokens: `steps` analytic steps and the
    final denoising step (an analytic step to sigma = 0 without the mask column)."""
    dim = model.vocab_embed.embedding.shape[0]
    x = torch.where(fixed, x, dim - 1)
    times = torch.linspace(1, eps, steps + 1)
    dt = (1 - eps) / steps
    for n in range(steps):
        x = torch.where(fixed, x, analytic_step(model, noise, x, times[n].expand(len(x), 1), dt))
    sigma = noise.total(times[-1].expand(len(x), 1))
    score = model(x, sigma.reshape(-1)).exp()
    probs = (staggered_score(score, sigma) * transp_transition(x, sigma, dim))[..., :-1]
    return torch.where(fixed, x, sample_categorical(probs))
