"""Precision: "auto" follows the CPU's flags (mocked here), a bf16 forward stays within a stated
tolerance of fp32 and leaves the fp32 model alone, attention on CPU runs in float32 when a backward
follows, and the trainer in bf16 resumes exactly."""
import time

import pytest
import torch

from conftest import metrics, tiny, tiny_config
from sedd_core import build, precision
from sedd_core.pipeline import Network, TimeUp
from training.train import main

INTEL = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R)\nflags\t\t: fpu sse2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
AMD = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 avx512f\n"


@pytest.mark.parametrize("cpuinfo, expected", [(INTEL, "bf16"), (AMD, "fp32"), (None, "fp32")])
def test_auto_is_bf16_only_where_the_cpu_says_so(tmp_path, monkeypatch, cpuinfo, expected):
    path = tmp_path / "cpuinfo"
    if cpuinfo is not None:  # None: no /proc/cpuinfo at all (not Linux)
        path.write_text(cpuinfo)
    real = precision.cpu_flags
    monkeypatch.setattr(precision, "cpu_flags", lambda: real(str(path)))
    assert precision.resolve("auto", "cpu") == expected
    assert precision.resolve("fp32", "cpu") == "fp32" and precision.resolve("bf16", "cpu") == "bf16"


def test_an_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, bf16; got 'fp16'"):
        precision.resolve("fp16", "cpu")


def test_bf16_scores_stay_close_to_fp32_and_the_model_stays_fp32():
    torch.manual_seed(0)
    model, graph, noise = build(tiny_config(20, length=16))
    for p in model.parameters():  # the zero-initialised head and modulations would make every score equal
        p.data.normal_(0, 0.2)
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randint(0, graph.dim, (4, 16))
    sigma = torch.tensor([0.1, 1.0, 3.0, 8.0])
    rows = x == graph.mask
    fast = Network(model, "bf16")
    with torch.no_grad():
        exact, approx = model(x, sigma), fast(x, sigma)
        assert approx.dtype == torch.float32
        # bf16 keeps 8 mantissa bits (a relative rounding of 2^-9 per product); over 2 blocks the
        # log-scores here move by at most a few hundredths of a nat
        assert (exact - approx).abs().max() < 0.05
        assert (exact - approx).abs().max() > 0  # it did run in bf16
        assert torch.allclose(fast(x, sigma, rows=rows), exact[rows], atol=0.05)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the fp32 model is untouched
    assert all(p.dtype == torch.float32 for p in model.parameters())
    # the copy shares every tensor but the Linear layers' (no second embedding in memory)
    assert fast.model.vocab_embed.embedding is model.vocab_embed.embedding
    assert fast.model.blocks[0].attn_qkv.weight.dtype == torch.bfloat16
    assert Network(model, "fp32").model is model


def test_attention_on_cpu_runs_in_float32_under_bf16_only_when_a_backward_follows(monkeypatch):
    seen = []
    attention = torch.nn.functional.scaled_dot_product_attention

    def recording(q, k, v, **kw):
        seen.append((q.dtype, k.dtype, v.dtype))
        return attention(q, k, v, **kw)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", recording)
    torch.manual_seed(0)
    model, graph, _ = build(tiny_config(20, length=16))  # two blocks
    x, sigma = torch.randint(0, graph.dim, (2, 16)), torch.tensor([0.5, 2.0])
    with precision.autocast("bf16", "cpu"):
        out = model(x, sigma)
        assert out.dtype == torch.float32 and out.requires_grad
        with torch.no_grad():
            model(x, sigma)
    model(x, sigma)  # fp32: nothing to change
    f32, bf16 = (torch.float32,) * 3, (torch.bfloat16,) * 3
    assert seen == [f32, f32, bf16, bf16, f32, f32]


def test_a_network_past_its_deadline_refuses_the_next_call(monkeypatch):
    model, graph, _ = build(tiny_config(20, length=8))
    calls = []
    monkeypatch.setattr(model, "forward", lambda *a, **k: calls.append(a) or torch.zeros(1, 8, graph.dim))
    net = Network(model, "fp32")
    x, sigma = torch.zeros(1, 8, dtype=torch.long), torch.ones(1)
    assert net.until(None)(x, sigma).dtype == torch.float32 and len(calls) == 1
    assert net.until(time.monotonic() + 60)(x, sigma) is not None and len(calls) == 2
    late = net.until(time.monotonic() - 1)
    with pytest.raises(TimeUp, match="ran past its time limit"):
        late(x, sigma)
    assert len(calls) == 2  # refused before the network ran
    assert net.when is None and late.selects_rows == net.selects_rows  # until() copies; the pipeline's stays


def test_the_trainer_in_bf16_resumes_exactly(corpus, tmp_path):
    run = {"training.precision": "bf16", "training.checkpoint_every": 2, "training.eval_every": 3,
           "training.sample_every": 1000}
    whole, halves = tmp_path / "whole", tmp_path / "halves"
    main(tiny(corpus, whole, **run, **{"training.steps": 6}))
    main(tiny(corpus, halves, **run, **{"training.steps": 3}))
    main([*tiny(corpus, halves, **run, **{"training.steps": 6}), "--resume"])
    first, second = metrics(whole), metrics(halves)
    assert [sorted(r) for r in first] == [sorted(r) for r in second]
    for a, b in zip(first, second):
        for key in ("loss", "valid_ppl"):
            if key in a:
                assert a[key] == pytest.approx(b[key], rel=1e-6), (a, b)
