"""Train a SEDD model, or (objective: ar) its autoregressive baseline:
`python -m training.train CONFIG [section.key=value ...] [--resume]`.

The same command runs on one CPU, one GPU, or many GPUs / nodes under `accelerate launch`:
DDP by default, FSDP (weights, gradients, Adam moments and EMA sharded over the processes) with
`training.fsdp=true`. `training.precision` (auto: bf16 where the hardware has it, CPU included) runs
each step under bf16 autocast with fp32 weights, gradients and AdamW (fused where torch has it);
`training.compile` adds torch.compile. Every `checkpoint_every` steps it writes `OUT/checkpoints/step_N.pt`
(model, EMA, optimizer, scheduler, step, data position) atomically, and exports the EMA weights
in the hub layout to `OUT/model/` (a SEDD model loads with `sedd_core.load_model`, the AR baseline
with `training.ar_folder.load_ar`). What differs between the two is one object of
`objectives.py` (network, loss, evaluation, samples, exported config); the loop is the same.
Randomness at each step is derived from (seed, step, rank), so a resumed run repeats an
uninterrupted one exactly.

A kill at any point loses nothing: a step's rows reach `OUT/metrics.jsonl` before its checkpoint is
written, and `--resume` drops the rows after the checkpoint it continues from (and a line torn by the
kill), redoes those steps, and first exports that checkpoint's EMA weights to `OUT/model/`. A run
from scratch starts the metrics afresh; one without `--resume` refuses a folder that holds checkpoints.
"""
import argparse
import copy
import hashlib
import json
import math
import shutil
import sys
import time
from contextlib import nullcontext
from functools import partial
from pathlib import Path
from typing import Collection

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import parse_flag_from_env
from tqdm import tqdm

from sedd_core import precision
from sedd_core.checkpoint import export_folder
from sedd_core.files import remove_stale, write_text
from sedd_core.tokenizer import TextTokenizer

from .config import TrainConfig, keys, load_config
from .data import BlockStream, load_splits
from .ema import EMA
from .objectives import for_training
from .plots import write_plots
from .sharding import full_state, load_optimizer, shard
from .state import checkpoints, load_latest, save_state
from .tokenizer import resolve_tokenizer


def lr_factor(opt, steps: int, step: int) -> float:
    """The learning rate at `step` as a share of optim.lr: linear warm-up, then constant or cosine
    down to min_lr_ratio at `steps` (a function of the step alone, so a resumed run repeats it)."""
    if step < opt.warmup:
        return (step + 1) / opt.warmup
    if opt.schedule == "constant":
        return 1.0
    done = min(1.0, (step - opt.warmup) / max(1, steps - opt.warmup))
    return opt.min_lr_ratio + (1 - opt.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * done))


class Trainer:
    def __init__(self, cfg: TrainConfig, resume: bool = False):
        self.cfg, t = cfg, cfg.training
        if t.threads:
            torch.set_num_threads(t.threads)
        if parse_flag_from_env("ACCELERATE_USE_FSDP"):
            raise ValueError("launch without --use_fsdp (or distributed_type: FSDP) and set training.fsdp=true: "
                             "the trainer shards the model itself with FSDP2, on GPUs and on CPUs alike")
        self.acc = Accelerator(cpu=not torch.cuda.is_available())  # precision is ours: see train_step
        self.precision = precision.resolve(t.precision, self.acc.device)
        self.out = Path(t.out_dir)
        found = checkpoints(self.out / "checkpoints")
        if found and not resume:
            raise ValueError(f"{self.out} already holds a run (checkpoint {found[-1].name}): add --resume to "
                             "continue it, or choose another training.out_dir")
        if self.acc.is_main_process:
            self._tidy()
        with self.acc.main_process_first():
            tok, self.tokenizer_file = resolve_tokenizer(cfg.data)
            self.tokenizer = TextTokenizer(tok)
            self.train_blocks, self.valid_blocks = load_splits(cfg.data, cfg.model.length, tok, self.tokenizer.eos_id)
        self.tokens = tok.get_vocab_size()
        self.objective = for_training(cfg, self.tokens, self.tokenizer.eos_id)  # SEDD or the AR baseline
        world, main = self.acc.num_processes, self.acc.is_main_process
        if t.batch_size % (world * t.accum):
            raise ValueError(f"training.batch_size={t.batch_size} must divide into {world} processes x {t.accum} accumulation steps")
        self.micro = t.batch_size // (world * t.accum)
        self.fsdp = t.fsdp and world > 1
        if t.fsdp and world == 1:
            self.acc.print("training.fsdp: there is only one process, so the model is trained unsharded")

        torch.manual_seed(t.seed)
        model = self.objective.build()
        state = self._checkpoint_to_resume(model) if resume else None
        model.to(self.acc.device)
        self.eval_model = copy.deepcopy(model).eval() if main else None  # EMA weights, unsharded
        self.core = shard(model, self.acc.device) if self.fsdp else model  # the module the optimizer sees
        opt = cfg.optim
        self.optimizer = torch.optim.AdamW(self.core.parameters(), lr=opt.lr, betas=(opt.beta1, opt.beta2),
                                           eps=opt.eps, weight_decay=opt.weight_decay, fused=not self.fsdp or None)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, partial(lr_factor, opt, t.steps))
        self.ema = EMA(self.core, t.ema)
        self.step = self.position = 0
        if state is not None:
            load_optimizer(self.core, self.optimizer, state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.ema.load_state_dict(state["ema"])
            self.step, self.position = state["step"], state["position"]
            self.acc.print(f"resumed from step {self.step}")
        # DDP replicas through accelerate; a sharded model already synchronises its own gradients
        self.model = self.core if self.fsdp else self.acc.prepare_model(self.core)
        if t.compile:
            self.model = torch.compile(self.model)
        self.stream = BlockStream(len(self.train_blocks), t.seed)

    def _tidy(self):
        """Make the run folder; remove what killed runs left: temporary files of processes that are
        gone (checkpoints, exports, metrics, the data cache) and a first export's unfinished folder."""
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ValueError(f"training.out_dir {self.out} cannot be made: {err.strerror}") from err
        for folder in ("", "checkpoints", "model", "samples"):
            remove_stale(self.out / folder)
        remove_stale(self.cfg.data.cache_dir)
        shutil.rmtree(self.out / ".model.tmp", ignore_errors=True)

    def _checkpoint_to_resume(self, model):
        """The newest complete checkpoint's state (its weights loaded into `model`), or None."""
        state = load_latest(self.out / "checkpoints", self.acc.print, set_aside=self.acc.is_main_process)
        if state is None:
            self.acc.print(f"no complete checkpoint in {self.out / 'checkpoints'}: starting from scratch")
            return None
        if state["tokens"] != self.tokens:
            raise ValueError(f"the checkpoint's model has {state['tokens']} tokens but the tokenizer "
                             f"{self.tokens}: the vocabulary does not match")
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as err:
            raise ValueError(f"the checkpoint of step {state['step']} holds another model than the config "
                             "describes: resume with the run's own model and objective settings") from err
        return state

    def _seed(self):
        """Per-step randomness from (seed, step, rank): dropout (global RNG) and the loss's draws.

        Ranks below 64 get (seed * 1,000,003 + step) * 64 + rank: distinct for every step and rank of a
        run (1,000,003 steps apart per seed), and the formula every run so far was trained with, so
        resumed runs repeat themselves. Ranks from 64 up would collide with the next step's rank 0, so
        they take a 63-bit BLAKE2 hash of (seed, step, rank) instead."""
        t, rank = self.cfg.training, self.acc.process_index
        s = (t.seed * 1_000_003 + self.step) * 64 + rank
        if rank >= 64:
            digest = hashlib.blake2b(f"{t.seed}/{self.step}/{rank}".encode(), digest_size=8).digest()
            s = int.from_bytes(digest, "little") >> 1
        torch.manual_seed(s)
        return torch.Generator(self.acc.device).manual_seed(s)

    def _gradient_sync(self, sync: bool):
        """Gradient accumulation: only the last micro-batch of a step exchanges gradients."""
        if self.fsdp:
            self.core.set_requires_gradient_sync(sync)
            return nullcontext()
        return nullcontext() if sync else self.acc.no_sync(self.model)

    def train_step(self) -> float:
        t, world, rank = self.cfg.training, self.acc.num_processes, self.acc.process_index
        gen = self._seed()
        idx = self.stream.indices(self.position, t.batch_size)
        self.position += t.batch_size
        total = torch.zeros((), device=self.acc.device)
        for m in range(t.accum):
            rows = idx[(m * world + rank) * self.micro:(m * world + rank + 1) * self.micro]
            x0 = torch.from_numpy(self.train_blocks[np.sort(rows)].astype(np.int64)).to(self.acc.device)
            with self._gradient_sync(m == t.accum - 1):
                with precision.autocast(self.precision, self.acc.device):  # sharded or replicated alike
                    loss = self.objective.loss(self.model, x0, gen).mean() / t.accum
                self.acc.backward(loss)
            total += loss.detach()
        torch.nn.utils.clip_grad_norm_(self.core.parameters(), self.cfg.optim.grad_clip)  # whole-model norm, sharded or not
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.ema.update(self.core, self.step)
        return self.acc.reduce(total, "mean").item() / self.cfg.model.length  # nats per token

    def evaluate(self) -> float:
        """Validation perplexity of the EMA weights on a fixed slice: the ELBO bound (SEDD) or exact (AR)."""
        t = self.cfg.training
        x0 = torch.from_numpy(self.valid_blocks[: t.eval_batches * self.micro].astype(np.int64)).to(self.acc.device)
        gen = torch.Generator(self.acc.device).manual_seed(t.seed)
        return float(self.objective.nats(self.eval_model, x0, gen).double().mean().exp())

    def snapshot(self):
        """EMA samples as text."""
        gen = torch.Generator(self.acc.device).manual_seed(self.cfg.training.seed)
        with torch.no_grad():
            x = self.objective.sample(self.eval_model, 2, gen, self.acc.device)
        (self.out / "samples").mkdir(parents=True, exist_ok=True)
        text = "\n\n".join(f"=== sample {i} ===\n{self.tokenizer.decode(r.tolist())}" for i, r in enumerate(x))
        (self.out / "samples" / f"step_{self.step:08d}.txt").write_text(text + "\n")

    def checkpoint(self, ema_full: dict):
        """Gather the state (a collective under FSDP; call on every process); the main process writes it."""
        model_state, optim_state = full_state(self.core, self.optimizer)
        if not self.acc.is_main_process:
            return
        state = {"model": model_state, "optimizer": optim_state, "scheduler": self.scheduler.state_dict(),
                 "ema": self.ema.state_dict(ema_full), "step": self.step, "position": self.position,
                 "tokens": self.tokens}
        save_state(self.out / "checkpoints", self.step, state, self.cfg.training.keep_checkpoints)

    def due(self, last: bool) -> set:
        """The periodic tasks (see `periodic`) due after this step: every one after the last step."""
        t = self.cfg.training
        every = {"evaluate": t.eval_every, "snapshot": t.sample_every, "checkpoint": t.checkpoint_every}
        return {task for task, n in every.items() if last or self.step % n == 0}

    def periodic(self, rows: list, tasks: Collection[str] = ()):
        """Append `rows` to the metrics and do `tasks`, in this order: "evaluate" the EMA weights (its
        row goes with `rows`), "snapshot" (samples), "export" the model folder, "checkpoint" (which
        always exports). The rows go first: a run killed before the checkpoint redoes them on resume,
        one killed after it has them already. Call on every process: gathering sharded weights takes
        all of them."""
        main = self.acc.is_main_process
        evaluate, snapshot, checkpoint = "evaluate" in tasks, "snapshot" in tasks, "checkpoint" in tasks
        export = "export" in tasks or checkpoint
        if evaluate or snapshot or export:
            ema_full = self.ema.full()
            if main:
                EMA.copy_to(self.eval_model, ema_full)
        if main and evaluate:
            rows.append({"step": self.step, "valid_ppl": self.evaluate(), "time": time.time()})
        if main and rows:
            metrics = self.out / "metrics.jsonl"
            with metrics.open("a") as f:
                f.writelines(json.dumps(r) + "\n" for r in rows)
            if evaluate:
                write_plots(metrics, self.out / "curves")
        if main and snapshot:
            self.snapshot()
        if main and export:  # before the checkpoint: model/ is never older than the newest checkpoint
            export_folder(self.out / "model", self.eval_model, self.objective.config, self.tokenizer_file)
        if checkpoint:
            self.checkpoint(ema_full)
        self.acc.wait_for_everyone()

    def _forget_metrics_after(self, step: int):
        """A resumed run redoes the steps after its checkpoint: drop their rows, and a line torn by a
        kill mid-write (the file is rewritten atomically)."""
        metrics = self.out / "metrics.jsonl"
        if not metrics.is_file():
            return
        kept = []
        for line in metrics.read_text(errors="replace").splitlines():
            try:
                if json.loads(line)["step"] <= step:
                    kept.append(line)
            except (json.JSONDecodeError, TypeError, KeyError):
                self.acc.print(f"warning: dropping an unreadable line of {metrics}: {line[:80]!r}")
        write_text(metrics, "".join(line + "\n" for line in kept))

    def run(self):
        t, main = self.cfg.training, self.acc.is_main_process
        if main:
            write_text(self.out / "train_config.json", json.dumps(self.cfg.to_dict(), indent=2))
        if self.step > 0:  # resumed: model/ is the checkpoint's EMA, however the last run ended
            if main:
                self._forget_metrics_after(self.step)
            self.periodic([], {"export"})
        else:  # from scratch: metrics too, starting from the first point of the validation curve
            if main:
                (self.out / "metrics.jsonl").unlink(missing_ok=True)
            self.periodic([], {"evaluate"})
        with tqdm(total=t.steps, initial=self.step, disable=not main, desc="training", dynamic_ncols=True) as bar:
            tokens_per_step = t.batch_size * self.cfg.model.length
            start, start_step, cpu_start = time.perf_counter(), self.step, time.process_time()
            last = self.step >= t.steps
            while not last:
                loss = self.train_step()
                rate = (self.step - start_step) * tokens_per_step / (time.perf_counter() - start)
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{rate:,.0f}")
                spent = t.cpu_seconds and time.process_time() - cpu_start >= t.cpu_seconds
                last, rows = self.step == t.steps or self._agree(spent), []
                if self.step % t.log_every == 0 or last:
                    rows.append({"step": self.step, "loss": loss, "tokens_per_s": rate,
                                 "lr": self.scheduler.get_last_lr()[0], "time": time.time()})
                self.periodic(rows, self.due(last))

    def _agree(self, flag) -> bool:
        """The main process's flag on every process (each may have used a different CPU time)."""
        if self.acc.num_processes == 1:
            return bool(flag)
        return bool(self.acc.reduce(torch.tensor(float(flag), device=self.acc.device), "max").item())

    def close(self):
        """Let go of everything that holds the process group (replicated or sharded model, optimizer,
        EMA shards), then close it: a gloo group that outlives its closing until interpreter exit can
        abort the process there."""
        self.model = self.core = self.optimizer = self.scheduler = self.ema = self.eval_model = None
        self.acc.free_memory()  # accelerate's own references to what it prepared; collects garbage
        self.acc.end_training()


def config_help() -> str:
    width = max(len(f"{k} = {v!r}") for k, v, _ in keys())
    return "\n".join(["config keys (in a file, or section.key=value overrides), defaults and meaning:"]
                     + [f"  {f'{k} = {v!r}':<{width}}  {help}" for k, v, help in keys()])


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m training.train", description=__doc__, epilog=config_help(),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", nargs="?", help="YAML or JSON config file (see training/configs/)")
    p.add_argument("overrides", nargs="*", help="section.key=value, e.g. training.steps=100 model.n_blocks=4")
    p.add_argument("--resume", action="store_true", help="continue from the newest complete checkpoint in out_dir")
    args = p.parse_intermixed_args(argv)  # --resume before or after the overrides
    if args.config and "=" in args.config:  # no file: the first word is already an override
        args.config, args.overrides = None, [args.config, *args.overrides]
    try:
        trainer = Trainer(load_config(args.config, args.overrides), resume=args.resume)
    except (ValueError, OSError, ImportError) as err:  # bad input: one line, before any compute
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        sys.exit(2)
    try:
        trainer.run()
    except OSError as err:  # a full disk, a folder gone: one line; every file it wrote is whole
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        sys.exit(2)
    trainer.close()


if __name__ == "__main__":
    main()
