"""The exact categorical draw: frequencies equal the weights, across block boundaries and dtypes."""
import pytest
import torch

from sedd_core.draw import BLOCK, categorical


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_frequencies_match_weights_across_blocks(dtype):
    """Mass in the first, a middle and the last (partial) block; zero weights are never drawn."""
    k = 2 * BLOCK + 37
    w = torch.zeros(k, dtype=dtype)
    w[[0, 3, BLOCK - 1, BLOCK, BLOCK + 100, k - 1]] = torch.tensor([0.1, 0.2, 0.05, 0.3, 0.15, 0.2], dtype=dtype)
    n = 200_000
    got = categorical((7 * w).expand(n, -1), torch.Generator().manual_seed(0))  # unnormalised on purpose
    freq = torch.bincount(got, minlength=k).double() / n
    assert freq[w == 0].sum() == 0
    assert torch.allclose(freq, w.double(), atol=4e-3)


def test_tiny_probabilities_keep_their_share():
    """float32 uniforms (2^-24 apart) would distort a 1e-5 token; float64 gives it its share."""
    w = torch.tensor([1.0, 1e-5])
    n = 2_000_000
    hits = (categorical(w.expand(n, -1), torch.Generator().manual_seed(0)) == 1).sum().item()
    assert 20 - 4 * 4.5 < hits < 20 + 4 * 4.5  # Poisson(20): 4 standard deviations


def test_rows_are_independent_and_seeded():
    w = torch.rand(64, 3000)
    a = categorical(w, torch.Generator().manual_seed(3))
    b = categorical(w, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == (64,) and (a < 3000).all()
