"""`python -m training.bundle` ships a tiny SEDD run as a model folder whose card states each goal, met
or not, and whose figures come back from the commands printed on it."""
import json
import re
import shutil
from pathlib import Path

import pytest

import training.bundle
from conftest import tiny
from evaluation.cli import main as evaluate
from sedd_core import SEDDPipeline
from training.bundle import GOALS, goals, main as bundle, overfit_line, overfitting
from training.bundle_ar import main as bundle_ar
from training.train import main as train

V1 = Path(__file__).resolve().parent.parent / "assets" / "sedd-prose-mini"


@pytest.fixture(scope="module")
def shipped(corpus, tmp_path_factory):
    """A tiny time-independent SEDD run and a tiny AR run of the same shape, bundled the way v2 is."""
    root = tmp_path_factory.mktemp("bundle")
    quiet = {"training.steps": 8, "training.sample_every": 1000, "training.eval_every": 4}
    train(tiny(corpus, root / "sedd", **quiet, **{"model.time_conditioning": False}))
    train(tiny(corpus, root / "ar", **quiet, **{"objective": "ar", "training.checkpoint_every": 4}))
    bundle_ar(["--run", str(root / "ar"), "--config", "tiny.yaml", "--out", str(root / "judge"), "--heldout", str(corpus / "valid.txt")])
    shutil.copytree(root / "judge", root / "judge-b")  # a second judge, as v2's card has v1's AR and its own
    out = root / "sedd-prose-test"
    bundle(["--run", str(root / "sedd"), "--config", "tiny.yaml", "--out", str(out), "--valid", str(corpus / "valid.txt"),
            "--train-text", str(corpus / "train.txt"), "--judge", str(root / "judge"), str(root / "judge-b"),
            "--ar-run", str(root / "ar"), "--blocks", "4", "--points", "8", "--samples", "6", "--previous", str(V1)])
    return out, json.loads((out / "eval.json").read_text())


def test_the_card_states_every_goal_with_its_figure(shipped):
    out, ev = shipped
    card = (out / "README.md").read_text()
    assert {p.name for p in out.iterdir()} == {"README.md", "config.json", "model.safetensors", "tokenizer.json",
                                              "heldout.txt", "eval.json", "curves.png", "curves.html"}
    assert len(ev["goals"]) == 4 and all(g["met"] in (True, False) for g in ev["goals"])  # the AR run makes all four
    for g in ev["goals"]:
        assert f"| {g['goal']} | {g['measured']} | {'yes' if g['met'] else '**no**'} |" in card
    ratio = ev["sedd"]["perplexity_bound"] / ev["ar"]["perplexity"]
    assert ev["goals"][1]["met"] == (ratio <= GOALS["ratio"]) and f"{ratio:.2f}x" in card
    assert "time-independent" in card and "python -m training.train tiny.yaml" in card
    assert ev["ar"]["validation"]["last_step"] == 8 and overfit_line(ev["ar"]["validation"], ev["train_tokens_M"]) in card
    assert ev["quality"]["command"] in card
    v1 = json.loads((V1 / "eval.json").read_text())["sedd"]["perplexity_bound"]
    assert f"| [sedd-prose-mini](../sedd-prose-mini) (the previous bundled model) | ELBO bound, from its card | {v1:.2f} |" in card


def test_an_ar_baseline_that_overfits_is_named_with_its_lowest_validation_figure():
    ar = [{"step": 0, "valid_ppl": 4096.0}, {"step": 2000, "valid_ppl": 37.5}, {"step": 6000, "valid_ppl": 30.9},
          {"step": 8000, "valid_ppl": 31.0}, {"step": 36000, "valid_ppl": 47.0}]
    sedd = [{"step": 6000, "valid_ppl": 122.6}, {"step": 36000, "valid_ppl": 66.8}]
    run = {"valid_curve": ar, "config": {"training": {"batch_size": 32}, "model": {"length": 128}}}  # 4,096 tokens a step
    v = overfitting(run, sedd)
    assert v == {"best_step": 6000, "best_valid_ppl": 30.9, "best_tokens": 6000 * 4096, "last_step": 36000,
                 "last_valid_ppl": 47.0, "last_tokens": 36000 * 4096, "other_at_last": 66.8, "overfits": True}
    line = overfit_line(v, 4.54)
    assert "lowest at step 6,000 (30.90, after 5.4 passes over the 4.54M-token training split)" in line
    assert "is 47.00 at step 36,000 (32.5 passes); SEDD's bound there is 66.80." in line and "flatters SEDD" in line
    ev = {"sedd": {"perplexity_bound": 80.4}, "ar": {"perplexity": 45.0, "validation": v},
          "quality": {"judge": "j", "first_hitting": {"gen_ppl": 270.0, "gen_ppl_stderr": 9.0, "entropy": 4.3},
                      "heldout": {"entropy": 4.4}}}
    _, measured, met = goals(ev)[1]
    assert measured == ("1.79x; 2.16x against the AR's lowest validation figure (step 6,000), which overfits after it:"
                        " met only if both are") and not met  # 1.79x alone would meet it
    run["valid_curve"] = ar[:3]
    ev["ar"]["validation"] = overfitting(run, sedd)  # no overfitting: the ratio at the same tokens decides
    assert goals(ev)[1][1:] == ("1.79x", True)
    falling = overfitting(run)
    assert overfitting({**run, "valid_curve": []}) is None and not falling["overfits"] and falling["other_at_last"] is None
    assert overfit_line(falling, 4.54).endswith("is 30.90 at step 6,000 (5.4 passes).")


def test_the_cards_figures_come_back_from_its_commands(shipped, tmp_path):
    out, ev = shipped
    card = (out / "README.md").read_text()
    judged = [ev["quality"], *ev["quality_more"]]
    assert [j["judge"].rsplit("/", 1)[-1] for j in judged] == ["judge", "judge-b"]  # the goal's judge first
    for n, j in enumerate(judged):
        assert f"| first_hitting samples | `{j['judge']}` | {j['first_hitting']['gen_ppl']:.2f}" in card
        assert f"Reproduce: `{j['command']}`" in card
        evaluate([*j["command"].split()[3:], "--out", str(tmp_path / f"quality{n}")])
        got = json.loads((tmp_path / f"quality{n}" / "quality.json").read_text())
        assert got["results"][0]["gen_ppl"] == pytest.approx(j["first_hitting"]["gen_ppl"], rel=1e-9)
        assert got["reference"]["entropy"] == pytest.approx(j["heldout"]["entropy"], rel=1e-9)
    printed = re.search(r"`python -m evaluation (likelihood [^`]*)`", (out / "README.md").read_text()).group(1)
    evaluate([*printed.split(), "--device", "cpu", "--out", str(tmp_path / "likelihood")])
    result = next(iter(json.loads((tmp_path / "likelihood" / "likelihood.json").read_text())["results"].values()))
    assert result["perplexity"] == pytest.approx(ev["sedd"]["perplexity_bound"], rel=1e-9)
    assert SEDDPipeline.from_pretrained(out, "cpu").model.time_independent


def test_an_ar_run_at_other_tokens_is_refused_before_any_work(shipped, corpus, tmp_path, capsys):
    root = shipped[0].parent
    partial = tmp_path / "ar"
    shutil.copytree(root / "ar", partial)
    (partial / "checkpoints" / "step_00000008.pt").unlink()  # the AR run as it stood at step 4 of 8
    with pytest.raises(SystemExit) as stop:
        bundle(["--run", str(root / "sedd"), "--config", "tiny.yaml", "--out", str(tmp_path / "card"),
                "--valid", str(corpus / "valid.txt"), "--train-text", str(corpus / "train.txt"),
                "--judge", str(root / "judge"), "--ar-run", str(partial)])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "has seen 1,024 tokens" in err and "the SEDD run 2,048" in err
    assert err.startswith("error: ") and "the ratio is taken at the same tokens" in err and "Traceback" not in err
    assert not (tmp_path / "card").exists()


def test_a_bundle_that_fails_midway_leaves_the_folder_as_it_was(shipped, corpus, tmp_path, monkeypatch, capsys):
    out, _ = shipped
    root, existing = out.parent, tmp_path / "sedd-prose-test"
    shutil.copytree(out, existing)
    (existing / "frontier.png").write_bytes(b"a file the bundle does not write")
    (existing / "model.safetensors").write_bytes(b"the weights the old card describes")
    (existing / "heldout.txt").write_text("the old held-out text")
    before = {p.name: p.read_bytes() for p in existing.iterdir()}

    def broken(*args, **kwargs):  # after the new weights, curves and held-out text are written
        raise ValueError("the judge broke")

    monkeypatch.setattr(training.bundle, "card_quality", broken)
    with pytest.raises(SystemExit) as stop:
        bundle(["--run", str(root / "sedd"), "--config", "tiny.yaml", "--out", str(existing), "--valid",
                str(corpus / "valid.txt"), "--train-text", str(corpus / "train.txt"), "--judge", str(root / "judge"), "--blocks", "4", "--points", "8"])
    assert stop.value.code == 2 and capsys.readouterr().err.endswith("\nerror: the judge broke\n")
    assert {p.name: p.read_bytes() for p in existing.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sedd-prose-test"]  # no backup left beside it
    with pytest.raises(SystemExit):  # a first bundle that fails leaves nothing
        bundle(["--run", str(root / "sedd"), "--config", "tiny.yaml", "--out", str(tmp_path / "new"), "--valid",
                str(corpus / "valid.txt"), "--train-text", str(corpus / "train.txt"), "--judge", str(root / "judge"), "--blocks", "4", "--points", "8"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sedd-prose-test"]
