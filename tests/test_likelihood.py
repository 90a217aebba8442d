"""The ELBO with the exact score bounds the exact NLL and is tight with a fine time grid; the loss is its MC estimate."""
import pytest
import torch

from exact import ExactProblem
from sedd_core.likelihood import elbo, perplexity_bound
from sedd_core.loss import sample_times, score_entropy_loss
from sedd_core.noise import Geometric, LogLinear


@pytest.mark.parametrize("graph_type", ["absorb", "uniform"])
def test_exact_elbo_bounds_and_nearly_equals_nll(graph_type):
    """E_p0[ELBO] >= entropy exactly (all x_t enumerated); the library's MC ELBO matches that value."""
    P = ExactProblem(graph_type)
    p0, nll = P.p0.reshape(-1), P.nll(P.sequences)
    entropy = (p0 * nll).sum()
    exact = (p0 * P.elbo(LogLinear(), 400)).sum()
    assert exact >= entropy
    assert (exact - entropy) / entropy < 0.03
    g = torch.Generator().manual_seed(0)
    per_pos = elbo(P.log_score, P.graph, LogLinear(), P.sequences.repeat(40, 1), points=400, max_batch=20_000, generator=g)
    mc = (p0 * per_pos.sum(-1).view(40, -1).mean(0).double()).sum()
    assert abs(mc - exact) / exact < 0.01
    assert perplexity_bound(per_pos).shape == (40 * 27,)


@pytest.mark.parametrize("sigma_min", [1e-2, 0.1])
def test_uniform_elbo_with_geometric_noise_bounds_a_rare_sequence(sigma_min):
    """Geometric noise starts at sigma_min > 0: without the piece from sigma = 0 the ELBO of the rarest
    sequence fell 1.2 (sigma_min 0.01) or 3.8 (0.1) nats below its exact NLL; with it, it bounds it."""
    P = ExactProblem("uniform")
    nll = P.nll(P.sequences)
    rare = int(nll.argmax())
    x0 = P.sequences[rare:rare + 1].repeat(4000, 1)
    g = torch.Generator().manual_seed(0)
    per_seq = elbo(P.log_score, P.graph, Geometric(sigma_min, 20.0), x0, points=64, max_batch=20_000,
                   generator=g).sum(-1).double()
    stderr = per_seq.std() / len(per_seq) ** 0.5
    assert per_seq.mean() > nll[rare] - 3 * stderr
    assert per_seq.mean() < nll[rare] + 0.1  # and stays tight


def test_loss_is_unbiased_estimate_of_elbo_integral():
    """Mean loss over t ~ U(0,1) equals the ELBO's integral part (the ELBO minus its prior KL)."""
    P = ExactProblem("absorb")
    x0 = P.sequences.repeat(400, 1)
    g = torch.Generator().manual_seed(0)
    noise = LogLinear()
    loss = score_entropy_loss(P.log_score, P.graph, noise, x0, eps=0.0, stratified=True, generator=g)
    integral = elbo(P.log_score, P.graph, noise, x0[:27 * 40], points=200, max_batch=20_000, generator=g).sum(-1)
    prior = P.graph.prior_kl(x0[:1], noise.total(torch.tensor(1.0, dtype=torch.float64))).sum()
    assert abs(loss.mean() - (integral.mean() - prior)) / integral.mean() < 0.05


def test_stratified_times_and_errors():
    t = sample_times(8, eps=0.1, stratified=True, generator=torch.Generator().manual_seed(0))
    strata = ((t - 0.1) / 0.9 * 8).floor()
    assert torch.equal(strata, torch.arange(8.0))
    P = ExactProblem("absorb")
    with pytest.raises(ValueError, match="unknown method"):
        elbo(P.log_score, P.graph, LogLinear(), P.sequences, method="simpson")
    with pytest.raises(ValueError, match="sigma_min < sigma_max"):
        Geometric(1.0, 0.5)
