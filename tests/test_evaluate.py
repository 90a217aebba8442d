"""training.evaluate on tiny models: each sub-command writes its table; the likelihood figure is
sedd_core's ELBO (or the AR baseline's exact NLL); judges given as local folders (a transformers GPT-2
and our AR baseline) run without network, read ids only across equal vocabularies and score every
token but the first once; unigram entropy; bad input gets one line and exit code 2."""
import json
import math
import os
import socket
import subprocess
import sys
import types

import numpy as np
import pytest
import torch

from conftest import ROOT, TEXT
from sedd_core import ModelConfig, SEDDPipeline, save_model
from sedd_core.likelihood import elbo
from evaluation import judge as judging
from training.ar import ar_nll, build_ar
from training.ar_folder import ARConfig
from evaluation.quality import SWEEP, Spec, draw, plan, unigram_entropy
from evaluation.cli import main
from training.tokenizer import train_tokenizer


@pytest.fixture(scope="module")
def ar_dir(tiny_model_dir, tmp_path_factory):
    """An AR baseline folder with the tiny SEDD model's tokenizer (random weights, context 32)."""
    folder = tmp_path_factory.mktemp("tiny-ar")
    cfg = ARConfig(300, ModelConfig(hidden_size=32, cond_dim=16, n_blocks=2, n_heads=4, length=32, dropout=0.0))
    torch.manual_seed(1)
    model = build_ar(cfg)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.2)
    save_model(folder, model, cfg, tiny_model_dir / "tokenizer.json")
    return folder


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    """A transformers GPT-2 folder with its own, different tokenizer and a 16-token context."""
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-gpt2")
    tok = train_tokenizer(TEXT, vocab_size=280)
    PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>").save_pretrained(folder)
    torch.manual_seed(2)
    config = GPT2Config(vocab_size=tok.get_vocab_size(), n_positions=16, n_embd=32, n_layer=1, n_head=2,
                        bos_token_id=0, eos_token_id=0)
    GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "heldout.txt"
    path.write_text("\n\n".join(TEXT[:12]))
    return path


def run(capsys, *argv):
    main([str(a) for a in argv])
    return capsys.readouterr().out


def test_likelihood_equals_sedd_core_elbo(tiny_model_dir, text_file, tmp_path, capsys):
    printed = run(capsys, "likelihood", "--model", tiny_model_dir, "--data", text_file, "--points", 8,
                  "--repeats", 1, "--batch-size", 64, "--seed", 3, "--device", "cpu", "--out", tmp_path)
    got = json.loads((tmp_path / "likelihood.json").read_text())
    r = got["results"][str(text_file)]
    pipe = SEDDPipeline.from_pretrained(tiny_model_dir, "cpu")
    ids = pipe.tokenizer.encode(text_file.read_text()) + [pipe.tokenizer.eos_id]  # one document, then EOS
    n = len(ids) // pipe.length
    x0 = torch.tensor(ids[: n * pipe.length]).view(n, pipe.length)
    want = elbo(pipe.scorer, pipe.graph, pipe.noise, x0, points=8, generator=torch.Generator().manual_seed(3))
    assert r["blocks"] == n and r["nats_per_token"] == pytest.approx(want.double().mean().item(), rel=1e-12)
    saved = np.load(tmp_path / r["tokens_file"])
    assert (saved["ids"] == x0.numpy()).all() and np.allclose(saved["nats"], want.numpy())
    assert "| data | blocks × length | measure |" in printed and "ELBO bound" in printed
    assert (tmp_path / "likelihood.md").read_text().startswith("# Likelihood") and got["command"].startswith(
        "python -m evaluation likelihood --model")


def test_likelihood_repeats_give_a_monte_carlo_error(tiny_model_dir, text_file, tmp_path, capsys):
    run(capsys, "likelihood", "--model", tiny_model_dir, "--data", text_file, "--points", 4, "--repeats", 3,
        "--device", "cpu", "--out", tmp_path)
    r = next(iter(json.loads((tmp_path / "likelihood.json").read_text())["results"].values()))
    assert r["repeats"] == 3 and 0 < r["stderr_mc"] < math.inf and r["perplexity"] == pytest.approx(
        math.exp(r["nats_per_token"]))


def test_likelihood_of_the_ar_baseline_is_exact(ar_dir, tiny_pipe, text_file, tmp_path, capsys):
    printed = run(capsys, "likelihood", "--model", ar_dir, "--data", text_file, "--device", "cpu", "--precision", "fp32",
                  "--out", tmp_path)
    r = next(iter(json.loads((tmp_path / "likelihood.json").read_text())["results"].values()))
    from training.ar_folder import load_ar
    model, tok, _ = load_ar(ar_dir)
    x0 = torch.from_numpy(np.load(tmp_path / r["tokens_file"])["ids"]).long()
    assert r["repeats"] == 1 and r["stderr_mc"] == 0 and "exact NLL" in printed
    assert r["nats_per_token"] == pytest.approx(ar_nll(model, x0, tok.eos_id).double().mean().item(), rel=1e-9)


def test_quality_with_a_transformers_judge_offline(tiny_model_dir, gpt2_dir, tmp_path, capsys, no_network):
    printed = run(capsys, "quality", "--model", tiny_model_dir, "--judge", gpt2_dir, "--samples", 3, "--steps", 2, 4,
                  "--predictors", "first_hitting", "analytic", "--device", "cpu", "--out", tmp_path)
    got = json.loads((tmp_path / "quality.json").read_text())
    assert [(r["predictor"], r["steps"]) for r in got["results"]] == [("first_hitting", None), ("analytic", 2),
                                                                      ("analytic", 4)]
    assert all(r["judge_reads"] == "text" and r["gen_ppl"] > 1 for r in got["results"])  # another vocabulary
    assert "| first_hitting | — | 24 |" in printed and printed.count("| analytic |") == 2
    html = (tmp_path / "quality.html").read_text()
    assert got["command"].replace("/", "\\u002f") in html  # the figure's caption, in plotly's JSON
    assert (tmp_path / "quality.png").stat().st_size > 10_000
    lines = (tmp_path / "quality_samples.jsonl").read_text().splitlines()
    assert len(lines) == 9 and all(json.loads(line)["text"] for line in lines)


def test_quality_with_our_ar_judge_covers_every_sampler(tiny_model_dir, tiny_pipe, ar_dir, text_file, tmp_path,
                                                        capsys, no_network):
    run(capsys, "quality", "--model", tiny_model_dir, "--judge", ar_dir, "--samples", 2, "--steps", 3,
        "--reference", text_file, "--device", "cpu", "--out", tmp_path)
    got = json.loads((tmp_path / "quality.json").read_text())
    assert [r["predictor"] for r in got["results"]] == list(tiny_pipe.predictors)
    assert all(r["judge_reads"] == "ids" for r in got["results"])  # the same vocabulary
    assert got["reference"]["samples"] == 2 and "held-out text" in (tmp_path / "quality.md").read_text()


def test_quality_flags_and_the_frontier_sweep(tiny_model_dir, ar_dir, tmp_path, capsys, no_network):
    run(capsys, "quality", "--model", tiny_model_dir, "--judge", ar_dir, "--samples", 2, "--steps", 4,
        "--predictors", "first_hitting", "--temperature", 0.5, "--top-p", 0.9, "--device", "cpu", "--out", tmp_path)
    got = json.loads((tmp_path / "quality.json").read_text())["results"]
    assert [r["label"] for r in got] == ["first_hitting (temperature=0.5, top_p=0.9)"] and not got[0]["exact"]
    out = tmp_path / "sweep"
    run(capsys, "quality", "--model", tiny_model_dir, "--judge", ar_dir, "--samples", 2, "--steps", 4, "--sweep",
        "--device", "cpu", "--out", out)
    got = json.loads((out / "quality.json").read_text())["results"]
    assert len(got) == len(SWEEP) and [r["exact"] for r in got[:2]] == [True, True] and not any(
        r["exact"] for r in got[2:])
    assert len({r["label"] for r in got}) == len(got)  # every setting is told apart
    assert (out / "quality.png").stat().st_size > 0 and "unigram entropy" in (out / "quality.html").read_text()


def test_sampler_options_make_runs():
    runs = plan(["first_hitting", "analytic"], [4, 8], {"per_call": 4})
    assert [(r.predictor, r.steps) for r in runs] == [("first_hitting", None), ("analytic", 4), ("analytic", 8)]
    assert runs[0].label == "first_hitting (per_call=4)"


def test_draw_passes_sampler_options(tiny_pipe):
    ids, calls, _ = draw(tiny_pipe, Spec("first_hitting", None, {"per_call": 4}), 3, 24, 2, seed=0)
    assert ids.shape == (3, 24) and calls == 6  # 24 slots, 4 per network call
    assert (ids < tiny_pipe.config.tokens).all()


def test_unigram_entropy_of_constant_and_uniform_samples():
    V = 300
    got = unigram_entropy(torch.stack([torch.full((V,), 7), torch.arange(V), torch.tensor([1, 2] * (V // 2))]))
    assert got[0] == 0 and got[1] == pytest.approx(math.log(V)) and got[2] == pytest.approx(math.log(2))


def test_the_judge_reads_ids_only_across_equal_vocabularies(tiny_pipe, ar_dir, gpt2_dir, no_network):
    ids = torch.tensor([tiny_pipe.tokenizer.encode("The quick brown fox jumps over the lazy dog.")])
    texts = [tiny_pipe.tokenizer.decode(ids[0].tolist())]
    ours, hf = judging.load_judge(str(ar_dir)), judging.load_judge(str(gpt2_dir))
    assert judging.judge_ids(ours, tiny_pipe.tokenizer, ids, texts) == (ids.tolist(), "ids")
    seqs, route = judging.judge_ids(hf, tiny_pipe.tokenizer, ids, texts)
    assert route == "text" and seqs == [hf.tokenizer(texts[0], add_special_tokens=False)["input_ids"]]
    assert seqs != ids.tolist()


def test_judges_score_every_token_but_the_first_once(ar_dir, gpt2_dir):
    hf, ours = judging.load_judge(str(gpt2_dir)), judging.load_judge(str(ar_dir))
    seqs = [list(range(3, 43)), [5], [5, 6], list(range(10, 26)), list(range(10, 27))]
    sums, counts = judging.score(hf, seqs, batch_size=2)
    assert counts.tolist() == [39, 0, 1, 15, 16] and sums[1] == 0

    @torch.no_grad()
    def nll(s):  # every token but the first given the ones before, in one window
        logits = hf.model(torch.tensor([s])).logits[0, :-1]
        return torch.nn.functional.cross_entropy(logits, torch.tensor(s[1:]), reduction="sum").item()

    assert sums[3].item() == pytest.approx(nll(seqs[3]), rel=1e-5)
    assert sums[0].item() == pytest.approx(nll(seqs[0][:16]) + nll(seqs[0][15:31]) + nll(seqs[0][30:]), rel=1e-5)
    x = torch.tensor([list(range(20, 50))])
    sums, counts = judging.score(ours, x.tolist(), batch_size=4)
    with torch.no_grad():
        want = ar_nll(ours.model, x, ours.tokenizer.eos_id)[0, 1:].sum().item()  # after BOS, as in training
    assert counts.item() == 29 and sums.item() == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("which", ["ar", "gpt2"])
def test_features_do_not_depend_on_padding(ar_dir, gpt2_dir, which):
    judge = judging.load_judge(str(ar_dir if which == "ar" else gpt2_dir))
    short, long = list(range(3, 9)), list(range(3, 15))
    together = judging.features(judge, [short, long], batch_size=2)
    alone = judging.features(judge, [short], batch_size=1)
    assert together.shape[0] == 2 and torch.allclose(together[0], alone[0], atol=1e-5)
    assert not torch.allclose(together[0], together[1])


def test_mauve_with_the_package(tiny_model_dir, ar_dir, text_file, tmp_path, capsys, monkeypatch):
    seen = {}

    def compute_mauve(p_features, q_features, **kwargs):
        seen.update(p=p_features.shape, q=q_features.shape, **kwargs)
        return types.SimpleNamespace(mauve=0.75, frontier_integral=0.1)

    monkeypatch.setitem(sys.modules, "mauve", types.SimpleNamespace(compute_mauve=compute_mauve))
    printed = run(capsys, "mauve", "--model", tiny_model_dir, "--featurizer", ar_dir, "--data", text_file,
                  "--samples", 3, "--prompt-tokens", 8, "--steps", 2, "--predictors", "analytic", "--device", "cpu",
                  "--out", tmp_path)
    assert seen["p"] == seen["q"] == (3, 32) and seen["device_id"] == -1
    assert "| analytic | 2 | 3 | 8 | 0.7500 |" in printed and "human continuations" in printed
    assert json.loads((tmp_path / "mauve.json").read_text())["results"][0]["mauve"] == 0.75


def bad(tmp_path, tiny_model_dir, ar_dir, text_file):
    (tmp_path / "empty.txt").write_text(" \n\n ")
    return {
        "unknown dataset": (["likelihood", "--data", "wikitext5"], "unknown dataset 'wikitext5': choose one of lambada"),
        "empty file": (["likelihood", "--data", tmp_path / "empty.txt"], "empty.txt holds no text"),
        "missing file": (["likelihood", "--data", tmp_path / "gone.txt"], "gone.txt does not exist"),
        "missing judge folder": (["quality", "--judge", tmp_path / "no-judge"], "judge folder"),
        "missing model": (["likelihood", "--model", tmp_path / "no-model", "--data", text_file], "does not exist"),
        "unknown sampler": (["quality", "--judge", ar_dir, "--predictors", "magic"], "unknown sampler 'magic'"),
        "AR model sampled": (["quality", "--model", ar_dir, "--judge", ar_dir], "is an AR baseline"),
        "too long": (["quality", "--judge", ar_dir, "--length", 999], "--length 999 is longer"),
        "prompt too long": (["mauve", "--data", text_file, "--featurizer", ar_dir, "--prompt-tokens", 24],
                            "--prompt-tokens must lie between 1 and 23"),
    }


CASES = ["unknown dataset", "empty file", "missing file", "missing judge folder", "missing model", "unknown sampler",
         "AR model sampled", "too long", "prompt too long"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_gets_one_line_and_exit_code_2(tmp_path, tiny_model_dir, ar_dir, text_file, capsys, monkeypatch, case):
    monkeypatch.setitem(sys.modules, "mauve", types.SimpleNamespace())  # present, so the prompt check is reached
    argv, message = bad(tmp_path, tiny_model_dir, ar_dir, text_file)[case]
    if "--model" not in argv:
        argv = [*argv, "--model", tiny_model_dir]
    with pytest.raises(SystemExit) as err:
        main([str(a) for a in [*argv, "--device", "cpu", "--out", tmp_path / "out"]])
    printed = capsys.readouterr().err.strip().splitlines()
    assert err.value.code == 2 and len(printed) == 1 and printed[0].startswith("error: ") and message in printed[0]


def test_mauve_without_the_package_says_how_to_get_it(tiny_model_dir, text_file, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "mauve", None)  # as if not installed
    with pytest.raises(SystemExit) as err:
        main(["mauve", "--model", str(tiny_model_dir), "--data", str(text_file)])
    printed = capsys.readouterr().err.strip().splitlines()
    assert err.value.code == 2 and len(printed) == 1 and "pip install mauve-text" in printed[0]


def test_hub_names_offline_fail_in_one_line(tiny_model_dir, tmp_path):
    """Named datasets and hub judges need the network: offline, a clear one-line message and exit code 2."""
    env = os.environ | {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                        "HF_HOME": str(tmp_path / "hf")}
    code = ("import sys; from evaluation.cli import main\n"
            "for argv in sys.argv[1:]:\n"
            "    try:\n        main(argv.split())\n    except SystemExit as e:\n        print('exit', e.code)\n")
    common = f"--model {tiny_model_dir} --device cpu --out {tmp_path}"
    done = subprocess.run([sys.executable, "-c", code, f"likelihood --data wikitext2 {common}",
                           f"quality --judge gpt2-large {common}"], env=env, capture_output=True, text=True, timeout=120)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert done.stdout.split() == ["exit", "2", "exit", "2"], done.stderr[-2000:]
    assert "cannot load WikiText2 (Salesforce/wikitext)" in errors[0] and "network" in errors[0]
    assert "cannot load the judge 'gpt2-large'" in errors[1]
