"""Run under `accelerate launch --cpu --num_processes 2`: train, then write every rank's weight checksum."""
import json
import sys
from pathlib import Path

import torch

from training.config import load_config
from training.train import Trainer

if __name__ == "__main__":
    out, *overrides = sys.argv[1:]
    trainer = Trainer(load_config(None, overrides))
    trainer.run()
    params = torch.cat([p.detach().flatten() for p in trainer.acc.unwrap_model(trainer.model).parameters()])
    sums = trainer.acc.gather(torch.stack([params.sum(), params.abs().sum()])[None]).tolist()
    if trainer.acc.is_main_process:
        Path(out).write_text(json.dumps({"world": trainer.acc.num_processes, "backend": trainer.acc.state.backend, "checksums": sums}))
    trainer.acc.end_training()
