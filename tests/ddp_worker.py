"""Run under `accelerate launch --num_processes 2`: train (`--resume` continues), then write what each process holds.

Reports the world size, the backend, each process's checksum of the whole (gathered) weights, and
how many weight elements each process keeps locally (half of them each under FSDP)."""
import json
import sys
from pathlib import Path

import torch
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
from torch.distributed.tensor import DTensor

from training.config import load_config
from training.train import Trainer

if __name__ == "__main__":
    out, *overrides = sys.argv[1:]
    resume = "--resume" in overrides
    trainer = Trainer(load_config(None, [o for o in overrides if o != "--resume"]), resume=resume)
    trainer.run()
    weights = get_model_state_dict(trainer.core, options=StateDictOptions(full_state_dict=True))  # on every process
    params = torch.cat([v.flatten() for v in weights.values()])
    local = sum((p.to_local() if isinstance(p, DTensor) else p).numel() for p in trainer.core.parameters())
    row = torch.tensor([[params.sum().item(), params.abs().sum().item(), local, params.numel()]], dtype=torch.float64)
    rows = trainer.acc.gather(row).tolist()
    if trainer.acc.is_main_process:
        Path(out).write_text(json.dumps({"world": trainer.acc.num_processes, "backend": trainer.acc.state.backend,
                                         "fsdp": trainer.fsdp, "checksums": [r[:2] for r in rows],
                                         "local": [r[2] for r in rows], "total": rows[0][3]}))
    trainer.close()
