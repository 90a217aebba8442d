"""Training on CPU in one process: a tiny run learns and exports a loadable model; resume is exact;
bad input fails early with a one-line message (kills and damage: test_resume.py; several
processes: test_distributed.py)."""
import json

import pytest
import torch
from safetensors import safe_open

import training.train
from conftest import ROOT, TEXT, metrics, tiny, tiny_config
from sedd_core import SEDDConfig, SEDDPipeline, build, load_model
from training.ar import build_ar
from training.config import load_config
from training.train import main
from training.state import read_state


def test_tiny_run_learns_and_exports(corpus, tmp_path):
    out = tmp_path / "run"
    main(tiny(corpus, out, **{"training.steps": 60, "training.eval_every": 30, "training.sample_every": 60,
                             "training.checkpoint_every": 30}))
    valid = [r["valid_ppl"] for r in metrics(out) if "valid_ppl" in r]
    assert len(valid) == 3 and valid[-1] < 0.8 * valid[0]
    assert (out / "curves.png").stat().st_size > 0 and (out / "curves.html").is_file()
    assert "=== sample 0 ===" in (out / "samples" / "step_00000060.txt").read_text()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_00000030.pt", "step_00000060.pt"]
    model, _, _ = load_model(out)  # the run folder resolves to its exported model/: the last EMA weights
    ema = read_state(out / "checkpoints" / "step_00000060.pt")["ema"]["shadow"]
    assert all(torch.equal(model.state_dict()[k], v) for k, v in ema.items())
    assert len(SEDDPipeline.from_pretrained(out / "model", "cpu").generate(length=16, steps=4)[0]) > 0


def test_resume_repeats_uninterrupted_run(corpus, tmp_path):
    common = {"training.eval_every": 1000, "training.sample_every": 1000, "training.checkpoint_every": 5}
    main(tiny(corpus, tmp_path / "a", **common, **{"training.steps": 12}))
    main(tiny(corpus, tmp_path / "b", **common, **{"training.steps": 7}))  # stops after a checkpoint at 5
    (tmp_path / "b" / "checkpoints" / "step_00000007.pt").unlink()  # as if killed after step 5's save
    main([*tiny(corpus, tmp_path / "b", **common, **{"training.steps": 12}), "--resume"])
    assert [r["step"] for r in metrics(tmp_path / "b")] == [r["step"] for r in metrics(tmp_path / "a")]  # steps 6, 7 once
    a = {r["step"]: r["loss"] for r in metrics(tmp_path / "a") if "loss" in r}
    b = {r["step"]: r["loss"] for r in metrics(tmp_path / "b") if "loss" in r}
    assert all(b[s] == pytest.approx(a[s], rel=1e-5, abs=1e-6) for s in range(1, 13))
    wa, wb = load_model(tmp_path / "a" / "model")[0], load_model(tmp_path / "b" / "model")[0]
    for (k, va), vb in zip(wa.state_dict().items(), wb.state_dict().values()):
        torch.testing.assert_close(va, vb, rtol=1e-5, atol=1e-6, msg=k)


@pytest.mark.parametrize("setup,overrides,message", [
    ("empty", {}, "is empty"),
    ("binary", {}, "not UTF-8"),
    ("short", {}, "fewer than one block"),
    ("ok", {"training.bach_size": 4}, "unknown config key training.'bach_size'"),
    ("ok", {"model.n_heads": 3}, "n_heads=3 must divide"),
    ("ok", {"data.tokenizer": "missing.json"}, "does not exist"),
    ("ok", {"graph": "ring"}, "graph must be one of absorb, uniform"),
])
def test_bad_input_fails_before_compute(corpus, tmp_path, capsys, setup, overrides, message):
    train = tmp_path / "train.txt"
    contents = {"empty": b"  \n\n", "binary": b"\xff\xfe\x00bad", "short": b"Too short.", "ok": (corpus / "train.txt").read_bytes()}
    train.write_bytes(contents[setup])
    args = tiny(corpus, tmp_path / "run", **{"data.train": str(train), "data.cache_dir": str(tmp_path / "cache")}, **overrides)
    with pytest.raises(SystemExit) as err:
        main(args)
    assert err.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "run" / "checkpoints").exists()


CONFIG_ERRORS = [  # (overrides, or a config file's text) -> what the one-line message says
    ({"training.checkpoint_every": 0}, "training.checkpoint_every must be at least 1, got 0"),
    ({"training.log_every": 0}, "training.log_every must be at least 1, got 0"),
    ({"training.eval_every": 0}, "training.eval_every must be at least 1, got 0"),
    ({"training.eval_every": -1}, "training.eval_every must be at least 1, got -1"),
    ({"training.eval_batches": 0}, "training.eval_batches must be at least 1, got 0"),
    ({"training.eval_points": 0}, "training.eval_points must be at least 1, got 0"),
    ({"training.threads": -1}, "training.threads must be at least 0, got -1"),
    ({"training.steps": -5}, "training.steps must be at least 1, got -5"),
    ({"training.steps": 2.5}, "training.steps must be a whole number, got 2.5"),
    ({"training.keep_checkpoints": 0}, "training.keep_checkpoints must be at least 1, got 0"),
    ({"training.ema": 2}, "training.ema must be below 1.0, got 2"),
    ({"training.out_dir": "{tmp}/a_file"}, "a_file is a file, not a folder"),
    ({"model.dropout": 2}, "model.dropout must be below 1.0, got 2"),
    ({"model.dropout": "x"}, "model.dropout must be a finite number, got 'x'"),
    ({"model.length": 10**12}, "model.length must be at most 131072, got 1000000000000"),
    ({"optim.grad_clip": -1}, "optim.grad_clip must be above 0.0, got -1"),
    ({"optim.warmup": -10}, "optim.warmup must be at least 0, got -10"),
    ({"optim.lr": -3e-4}, "optim.lr must be above 0.0, got -0.0003"),
    ({"optim.lr.x": 1}, "optim.lr is a value, not a section"),
    ("training: {seed: {x: 1}}\n", "training.seed is a value, not a section; got {'x': 1}"),
    ({"data.valid_fraction": -0.5}, "data.valid_fraction must be above 0.0, got -0.5"),
    ({"training..steps": 3}, "must look like section.key=value"),
    ("model: {hidden_size: 64\n", "is not valid YAML: expected ',' or '}', but got '<stream end>' (line 2, column 1)"),
    ("42\n", "must hold sections of keys, got int 42"),
]


@pytest.mark.parametrize("given,message", CONFIG_ERRORS, ids=[m.split(",")[0] for _, m in CONFIG_ERRORS])
def test_bad_config_is_refused_in_one_line_before_compute(corpus, tmp_path, capsys, monkeypatch, given, message):
    def compute(*args):
        raise AssertionError("the tokenizer or the data was loaded")

    monkeypatch.setattr(training.train, "resolve_tokenizer", compute)
    monkeypatch.setattr(training.train, "load_splits", compute)
    (tmp_path / "a_file").write_text("")
    config = tmp_path / "config.yaml"
    config.write_text(given if isinstance(given, str) else "{}")
    overrides = {} if isinstance(given, str) else {k: str(v).format(tmp=tmp_path) for k, v in given.items()}
    with pytest.raises(SystemExit) as err:
        main([str(config), *tiny(corpus, tmp_path / "run", **overrides)])
    printed = capsys.readouterr().err.splitlines()
    assert err.value.code == 2 and len(printed) == 1 and printed[0].startswith("error: ") and message in printed[0]
    assert not (tmp_path / "run").exists()


def test_resume_with_other_vocabulary_is_refused(corpus, tmp_path, capsys):
    main(tiny(corpus, tmp_path / "run", **{"training.steps": 2, "training.eval_every": 1000, "training.sample_every": 1000}))
    with pytest.raises(SystemExit):
        main([*tiny(corpus, tmp_path / "run", **{"training.steps": 4, "data.vocab_size": 280}), "--resume"])
    assert "vocabulary does not match" in capsys.readouterr().err


@pytest.mark.parametrize("path", sorted((ROOT / "training" / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_build_their_models(path):
    """Each shipped config's model builds (on the meta device: no memory, no time)."""
    cfg = load_config(str(path))
    tokens = 50257 if cfg.data.tokenizer == "gpt2" else cfg.data.vocab_size
    with torch.device("meta"):
        model = build_ar(cfg.sedd_config(tokens)) if cfg.objective == "ar" else build(cfg.sedd_config(tokens))[0]
    assert sum(p.numel() for p in model.parameters()) > 100_000


@pytest.mark.parametrize("config, folder", [("bundled", "sedd-prose-mini"), ("bundled_v2", "sedd-prose-v2")])
def test_bundled_config_rebuilds_the_bundled_model(config, folder):
    """Each bundled model's training config describes its folder exactly, tensor by tensor; its AR
    baseline's config is the same size."""
    cfg, ar = (load_config(str(ROOT / "training" / "configs" / f"{n}.yaml")) for n in (config, f"{config}_ar"))
    bundled = ROOT / "assets" / folder
    shipped = json.loads((bundled / "config.json").read_text())
    assert cfg.data.vocab_size == shipped["tokens"]
    assert cfg.sedd_config(shipped["tokens"]).to_dict() == SEDDConfig.from_dict(shipped).to_dict()
    assert ar.model == cfg.model and ar.objective == "ar"
    with torch.device("meta"):
        model = build(cfg.sedd_config(shipped["tokens"]))[0]
    with safe_open(str(bundled / "model.safetensors"), "pt") as f:
        weights = {k: list(f.get_slice(k).get_shape()) for k in f.keys()}
    assert weights == {k: list(v.shape) for k, v in model.state_dict().items()}


def test_uniform_graph_with_geometric_noise_trains(corpus, tmp_path):
    out = tmp_path / "uniform"
    main(tiny(corpus, out, **{"graph": "uniform", "noise": "geometric", "sigma_min": 1e-3, "sigma_max": 3.0,
                             "model.scale_by_sigma": False, "training.steps": 30, "training.eval_every": 15,
                             "training.sample_every": 30}))
    valid = [r["valid_ppl"] for r in metrics(out) if "valid_ppl" in r]
    assert valid[-1] < valid[0]
    _, graph, noise = load_model(out)
    assert not graph.absorb and noise.sigma_max == 3.0


def test_time_independent_model_trains_and_samples_with_the_cache(corpus, tmp_path):
    """model.time_conditioning=false trains, exports, and its analytic sampler skips unchanged rows."""
    out = tmp_path / "time-free"
    main(tiny(corpus, out, **{"model.time_conditioning": "false", "training.steps": 30, "training.eval_every": 15,
                             "training.sample_every": 30}))
    valid = [r["valid_ppl"] for r in metrics(out) if "valid_ppl" in r]
    assert valid[-1] < valid[0]
    pipe = SEDDPipeline.from_pretrained(out, "cpu")
    assert pipe.model.time_independent and not pipe.config.model.time_conditioning
    last = list(pipe.stream(*pipe.template("The quick [[6]] dog."), steps=64))[-1]
    assert last.done and last.calls <= 7 and not (last.tokens == pipe.graph.mask).any()  # 65 steps, <= 6 changes


def test_hugging_face_dataset_source(corpus, tmp_path, monkeypatch):
    """hf:NAME goes through datasets.load_dataset: here a local folder in the hub's dataset layout."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    repo = tmp_path / "someone--prose"
    (repo / "data").mkdir(parents=True)
    (repo / "data" / "train.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXT * 3))
    (repo / "data" / "validation.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXT[:8]))
    out = tmp_path / "run"
    main(tiny(corpus, out, **{"data.train": f"hf:{repo}", "data.valid": f"hf:{repo}@validation",
                             "training.steps": 3, "training.eval_every": 3, "training.sample_every": 1000}))
    assert [r["step"] for r in metrics(out) if "valid_ppl" in r] == [0, 3]


def test_block_stream_is_addressed_by_position():
    """Each epoch is a permutation of all blocks; any slice of the stream can be recomputed from its position."""
    from training.data import BlockStream

    stream = BlockStream(7, seed=3)
    whole = stream.indices(0, 21)
    assert all(sorted(whole[e * 7:(e + 1) * 7].tolist()) == list(range(7)) for e in range(3))
    assert not (whole[:7] == whole[7:14]).all()
    assert (stream.indices(5, 11) == whole[5:16]).all()


def test_help_explains_every_config_key(capsys):
    from training.config import keys
    documented = list(keys())
    assert len(documented) > 40 and all(help.strip() for _, _, help in documented)
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert all(f"{k} = {v!r}" in out and help in out for k, v, help in documented)
    assert "[eps, 1]" in out and "[0, 1]" not in out  # training draws t from [1e-3, 1]


def test_ar_baseline_trains_exports_and_its_evaluation_reproduces_the_run(corpus, tmp_path):
    from sedd_core.tokenizer import TextTokenizer
    from training.ar import ar_perplexity
    from training.ar_folder import load_ar
    from training.data import load_splits
    from evaluation.cli import ar_perplexity_of_run
    from training.tokenizer import resolve_tokenizer

    out = tmp_path / "ar"
    main(tiny(corpus, out, **{"objective": "ar", "training.steps": 30, "training.eval_every": 30,
                             "training.checkpoint_every": 30}))
    valid = [r["valid_ppl"] for r in metrics(out) if "valid_ppl" in r]
    assert len(valid) == 2 and valid[-1] < 0.8 * valid[0]
    assert "=== sample 1 ===" in (out / "samples" / "step_00000030.txt").read_text()  # ancestral samples
    exported, _, _ = load_ar(out / "model")  # exported in the hub layout, as a SEDD run is
    cfg = load_config(str(out / "train_config.json"))
    tok, _ = resolve_tokenizer(cfg.data)
    eos = TextTokenizer(tok).eos_id
    x0 = torch.from_numpy(load_splits(cfg.data, cfg.model.length, tok, eos)[1][:16].astype("int64"))  # eval slice
    got = ar_perplexity_of_run(out, x0, eos)
    assert got["step"] == 30 and got["perplexity"] == pytest.approx(valid[-1], rel=1e-5)
    assert ar_perplexity(exported, x0, eos) == pytest.approx(valid[-1], rel=1e-5)


def test_the_ar_loss_is_each_tokens_cross_entropy_after_bos():
    from training.ar import ar_loss, ar_nll

    torch.manual_seed(0)
    model = build_ar(tiny_config(11, length=8))
    for p in model.parameters():  # the zero-initialised head would give every token the same logit
        p.data.normal_(0, 0.3)
    x0, bos = torch.randint(0, 11, (3, 8)), 10
    with torch.no_grad():
        got = ar_nll(model, x0, bos)
        for b in range(3):  # position i is read from BOS and x0[b, :i] alone (causal)
            for i in range(8):
                context = torch.tensor([[bos, *x0[b, :i].tolist()]])
                want = -model(context)[0, -1].double().log_softmax(-1)[x0[b, i]]
                assert got[b, i].item() == pytest.approx(want.item(), abs=1e-5)
        assert torch.allclose(ar_loss(model, x0, bos), got.sum(dim=-1))


def test_a_corpus_of_one_endless_word_trains_a_tokenizer_in_seconds():
    """Byte-level BPE grows with the square of a word's length: words are cut at MAX_WORD characters."""
    import time

    from training.tokenizer import train_tokenizer
    start = time.process_time()
    tok = train_tokenizer(["a" * 1_000_000], 300)
    assert time.process_time() - start < 10  # was quadratic: 100k characters took 7 s, 1M hours
    assert tok.decode(tok.encode("a" * 250).ids) == "a" * 250
    text = "The river ran to the sea, and the sea was wide."
    assert train_tokenizer([text] * 50, 300).get_vocab() == train_tokenizer([text] * 50, 300).get_vocab()


def test_the_learning_rate_warms_up_then_follows_its_schedule():
    from training.config import OptimConfig
    from training.train import lr_factor
    const, cosine = OptimConfig(warmup=10), OptimConfig(warmup=10, schedule="cosine", min_lr_ratio=0.1)
    assert [lr_factor(const, 110, s) for s in (0, 4, 9, 10, 60, 109)] == [0.1, 0.5, 1.0, 1.0, 1.0, 1.0]
    assert lr_factor(cosine, 110, 9) == 1.0 and lr_factor(cosine, 110, 10) == 1.0
    assert lr_factor(cosine, 110, 60) == pytest.approx(0.55) and lr_factor(cosine, 110, 110) == pytest.approx(0.1)
    assert lr_factor(cosine, 110, 500) == pytest.approx(0.1)  # past the end: the floor


def test_every_rank_and_step_draws_its_own_randomness(corpus, tmp_path):
    """The per-step seed is distinct across ranks and steps, past 64 processes too (issue 19)."""
    from types import SimpleNamespace

    from training.train import Trainer
    seen = set()
    for rank in (0, 1, 63, 64, 65, 200):
        for step in range(3):
            fake = SimpleNamespace(cfg=SimpleNamespace(training=SimpleNamespace(seed=0)), step=step,
                                   acc=SimpleNamespace(process_index=rank, device="cpu"))
            seen.add(Trainer._seed(fake).initial_seed())
    assert len(seen) == 6 * 3
