"""A tiny training run for tests/test_distributed.py, started by torchrun (or plainly, as one process).

    torchrun --standalone --nproc_per_node=2 tests/distributed_worker.py DATA RUN_DIR EPOCHS [--odd-rank-lr]

The model has no batch norm and no dropout, so one process and two processes compute the same
thing (per-process batch-norm statistics would differ; PyTorch's SyncBatchNorm needs GPUs).
Each rank writes its pid and the training indices it will see in the first epoch next to RUN_DIR,
and the main process saves the weights after the first epoch there too (RUN_DIR-epoch1.pt).
The tests also call ``train`` in their own process, for the single-process runs.
"""

import json
import os
import sys
from pathlib import Path

import torch

from googlenet_utils import GoogLeNet, TrainConfig, distributed, load_cifar10
from googlenet_utils.trainer import Trainer


def train(data_dir: str, run_dir: Path, epochs: int, odd_rank_lr: bool = False) -> None:
    context = distributed.start("cpu")
    rank = context.rank if context else 0
    lr = 0.07 if odd_rank_lr and rank == 1 else 0.05
    notes = run_dir.parent / f"{run_dir.name}-rank{rank}.json"
    torch.manual_seed(0)
    model = GoogLeNet(10, variant="cifar", width=0.0625, batch_norm=False, dropout=0.0, aux_dropout=0.0)
    config = TrainConfig(
        epochs=epochs,
        batch_size=64,
        lr=lr,
        warmup_epochs=0.5,
        val_size=100,
        eval_batch_size=100,
        tta="flip",
        run_dir=str(run_dir),
        progress=False,
        resume=True,
        device="cpu",
        precision="fp32",  # "auto" is bf16 on a CPU with native bf16; the comparisons need fp32 rounding
    )

    def snapshot_after_the_first_epoch(progress: dict) -> None:  # the main process's end-of-epoch hook
        if progress["epochs_done"] == 1:
            torch.save(model.state_dict(), run_dir.parent / f"{run_dir.name}-epoch1.pt")

    data = load_cifar10(data_dir, verify=False)
    trainer = Trainer(model, data, config, distributed=context, on_epoch=snapshot_after_the_first_epoch)
    seen = [index.tolist() for index in trainer.train_loader.batch_indices()]
    notes.write_text(json.dumps({"pid": os.getpid(), "first_epoch_indices": seen}))
    try:
        trainer.run()
    finally:
        distributed.stop(context)


if __name__ == "__main__":
    train(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), "--odd-rank-lr" in sys.argv)
