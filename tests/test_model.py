"""The DDiT score network: official state-dict names and shapes, and the official forward computation."""
import math

import pytest
import torch
import torch.nn.functional as F

from conftest import tiny_config
from sedd_core import build
from sedd_core.config import ModelConfig, SEDDConfig


def official_key_shapes(V, D, C, n_blocks, head_dim):
    """Keys and shapes of the official SEDD checkpoints, written out from the reference architecture."""
    keys = {"vocab_embed.embedding": (V, D), "sigma_map.mlp.0.weight": (C, 256), "sigma_map.mlp.0.bias": (C,),
            "sigma_map.mlp.2.weight": (C, C), "sigma_map.mlp.2.bias": (C,), "rotary_emb.inv_freq": (head_dim // 2,),
            "output_layer.norm_final.weight": (D,), "output_layer.linear.weight": (V, D),
            "output_layer.linear.bias": (V,), "output_layer.adaLN_modulation.weight": (2 * D, C),
            "output_layer.adaLN_modulation.bias": (2 * D,)}
    for n in range(n_blocks):
        b = f"blocks.{n}."
        keys |= {b + "norm1.weight": (D,), b + "attn_qkv.weight": (3 * D, D), b + "attn_out.weight": (D, D),
                 b + "norm2.weight": (D,), b + "mlp.0.weight": (4 * D, D), b + "mlp.0.bias": (4 * D,),
                 b + "mlp.2.weight": (D, 4 * D), b + "mlp.2.bias": (D,), b + "adaLN_modulation.weight": (6 * D, C),
                 b + "adaLN_modulation.bias": (6 * D,)}
    return keys


def test_state_dict_matches_official_sedd_small_and_medium():
    for D, n_blocks, n_heads in ((768, 12, 12), (1024, 24, 16)):
        cfg = SEDDConfig(tokens=50257, model=ModelConfig(hidden_size=D, n_blocks=n_blocks, n_heads=n_heads))
        with torch.device("meta"):
            model, _, _ = build(cfg)
        got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        assert got == official_key_shapes(50258, D, 128, n_blocks, D // n_heads)


def reference_forward(model, x, sigma, n_heads):
    """The official forward written naively: explicit softmax attention, rotary on q and k (rotate-half)."""
    sd = {k: v.double() for k, v in model.state_dict().items()}
    B, L = x.shape
    h = sd["vocab_embed.embedding"][x]
    half = 128
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float64) / half)
    args = sigma.double()[:, None] * freqs
    t = torch.cat([args.cos(), args.sin()], -1) @ sd["sigma_map.mlp.0.weight"].T + sd["sigma_map.mlp.0.bias"]
    c = F.silu(F.silu(t) @ sd["sigma_map.mlp.2.weight"].T + sd["sigma_map.mlp.2.bias"])
    D = h.shape[-1]
    d = D // n_heads
    ang = torch.arange(L, dtype=torch.float64)[:, None] * sd["rotary_emb.inv_freq"][None]
    cos, sin = torch.cat([ang, ang], -1).cos(), torch.cat([ang, ang], -1).sin()

    def norm(v, w):
        return (v - v.mean(-1, keepdim=True)) / torch.sqrt(v.var(-1, unbiased=False, keepdim=True) + 1e-5) * w

    def rot(v):
        return v * cos + torch.cat([-v[..., d // 2:], v[..., : d // 2]], -1) * sin

    n = 0
    while f"blocks.{n}.norm1.weight" in sd:
        p = lambda k: sd[f"blocks.{n}.{k}"]  # noqa: E731
        mod = (c @ p("adaLN_modulation.weight").T + p("adaLN_modulation.bias"))[:, None]
        s1, sc1, g1, s2, sc2, g2 = mod.chunk(6, -1)
        qkv = (norm(h, p("norm1.weight")) * (1 + sc1) + s1) @ p("attn_qkv.weight").T
        q, k, v = qkv.view(B, L, 3, n_heads, d).unbind(2)  # (B, L, H, d)
        q, k = rot(q.transpose(1, 2)), rot(k.transpose(1, 2))
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), -1) @ v.transpose(1, 2)
        h = h + g1 * (att.transpose(1, 2).reshape(B, L, D) @ p("attn_out.weight").T)
        m = norm(h, p("norm2.weight")) * (1 + sc2) + s2
        m = F.gelu(m @ p("mlp.0.weight").T + p("mlp.0.bias"), approximate="tanh") @ p("mlp.2.weight").T + p("mlp.2.bias")
        h = h + g2 * m
        n += 1
    shift, scale = (c @ sd["output_layer.adaLN_modulation.weight"].T + sd["output_layer.adaLN_modulation.bias"])[:, None].chunk(2, -1)
    out = (norm(h, sd["output_layer.norm_final.weight"]) * (1 + scale) + shift) @ sd["output_layer.linear.weight"].T
    out = out + sd["output_layer.linear.bias"]
    out = out - torch.expm1(sigma.double()).log()[:, None, None] - math.log(out.shape[-1] - 1)
    return out.scatter(-1, x[..., None], 0.0)


def test_forward_equals_official_computation():
    torch.manual_seed(0)
    cfg = tiny_config(50)
    model, _, _ = build(cfg)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.3)
    model.eval()
    x = torch.randint(0, 51, (3, 11))
    sigma = torch.tensor([0.01, 0.7, 5.0])
    out = model(x, sigma)
    ref = reference_forward(model, x, sigma, cfg.model.n_heads)
    assert out.shape == (3, 11, 51) and out.dtype == torch.float32
    torch.testing.assert_close(out.double(), ref, rtol=1e-4, atol=1e-4)
    assert (out.gather(-1, x[..., None]) == 0).all()


def test_bad_sizes_are_named():
    with pytest.raises(ValueError, match="n_heads=5 must divide model.hidden_size=32"):
        SEDDConfig(tokens=10, model=ModelConfig(hidden_size=32, n_heads=5))
    with pytest.raises(ValueError, match="graph must be one of absorb, uniform; got 'ring'"):
        SEDDConfig(tokens=10, graph="ring")
    with pytest.raises(ValueError, match="noise must be one of loglinear, geometric; got 'cosine'"):
        SEDDConfig(tokens=10, noise="cosine")


def test_head_on_selected_rows_equals_the_full_forward():
    torch.manual_seed(1)
    model, _, _ = build(tiny_config(50))
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.3)
    model.eval()
    x = torch.randint(0, 51, (3, 11))
    sigma = torch.tensor([0.01, 0.7, 5.0])
    rows = torch.rand(3, 11) < 0.4
    rows[1] = False  # a batch row with nothing selected
    with torch.no_grad():
        full, part = model(x, sigma), model(x, sigma, rows=rows)
    assert part.shape == (int(rows.sum()), 51)
    torch.testing.assert_close(part, full[rows], rtol=1e-5, atol=1e-5)


def test_time_independent_model_scores_differ_only_by_the_analytic_factor():
    cfg = tiny_config(50)
    cfg.model.time_conditioning = False
    cfg.validate()
    model, _, _ = build(cfg)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.3)
    model.eval()
    assert model.time_independent and "sigma_map.mlp.0.weight" not in model.state_dict()
    x = torch.full((2, 7), 50)
    x[:, 3] = 4
    with torch.no_grad():
        a, b = model(x, torch.tensor([0.1, 0.1])), model(x, torch.tensor([2.0, 2.0]))
    shift = torch.expm1(torch.tensor(2.0)).log() - torch.expm1(torch.tensor(0.1)).log()
    masked = x == 50
    torch.testing.assert_close(a[masked][:, :-1] - b[masked][:, :-1], shift.expand(int(masked.sum()), 50))
    with pytest.raises(ValueError, match="time_conditioning=false needs the absorbing graph"):
        SEDDConfig(tokens=10, graph="uniform", noise="geometric",
                   model=ModelConfig(scale_by_sigma=False, time_conditioning=False))


def test_official_config_without_our_keys_loads():
    """Official run configs have no time_conditioning key (and extra keys we ignore)."""
    d = {"tokens": 50257, "graph": {"type": "absorb"}, "noise": {"type": "loglinear"},
         "model": {"name": "small", "type": "ddit", "hidden_size": 768, "cond_dim": 128, "length": 1024,
                   "n_blocks": 12, "n_heads": 12, "scale_by_sigma": True, "dropout": 0.1}}
    assert SEDDConfig.from_dict(d).model.time_conditioning
