"""Run by ``tests/test_ddp.py`` under ``torchrun``: one training run, recording for this process
the training pairs it drew and a digest of its model's parameters at every checkpoint save.

    torchrun --nproc_per_node=2 tests/ddp_run.py CONFIG LOG_DIR [STOP_AFTER_EPOCH]

With STOP_AFTER_EPOCH, every process exits (status 3) right after that epoch's ``last.ckpt``: a
run killed between epochs, to be resumed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

from backbone.data.faces import datasets
from backbone.training import trainer
from backbone.training.config import TrainConfig


def digest(named) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(named):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def main(config: str, log_dir: str, stop_after: str | None = None) -> None:
    rank = int(os.environ["RANK"])
    drawn: list[int] = []
    digests: list[str] = []
    get_pair, save = datasets.PairDataset.__getitem__, trainer.save_checkpoint

    def recording_get(self, i):
        drawn.append(int(i))
        return get_pair(self, i)

    def recording_save(fabric, path, state):
        # parameters only: batch-norm statistics are each process's own until the next forward
        # broadcasts process 0's (DDP's broadcast_buffers)
        digests.append(digest(state["model"].named_parameters()))
        save(fabric, path, state)
        if stop_after is not None and path.name == "last.ckpt" and state["epoch"] == int(stop_after):
            sys.exit(3)

    datasets.PairDataset.__getitem__ = recording_get
    trainer.save_checkpoint = recording_save
    cfg = TrainConfig.load(config)
    result = trainer.train(cfg, progress=False)
    log = {"rank": rank, "world_size": int(os.environ["WORLD_SIZE"]), "drawn": drawn, "digests": digests,
           "global_zero": result.global_zero, "epochs_run": result.epochs_run}  # fmt: skip
    with open(os.path.join(log_dir, f"rank{rank}.json"), "w") as f:
        json.dump(log, f)
    if result.global_zero:
        print(f"summary: {result.epochs_run} epochs")


if __name__ == "__main__":
    main(*sys.argv[1:4])
