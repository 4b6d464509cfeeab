"""Run under ``torchrun --nproc_per_node 2``: a twin fit trains on an epoch's last global batch
even when it holds fewer trials than there are processes, exactly as one process does.

- one epoch of 9 train trials in batches of 4 (the last holds 1) counts all 9 trials, summed
  over the processes (the last batch used to be skipped: 8);
- the data-parallel gradient of that 1-trial batch is the one-process gradient (every process
  computes it, rank 0's loss counts and the others' weigh 0 but still join DDP's backward);
- a global batch smaller than the process count is refused in one line.

Exits 1 (printing what differs) on a failure.
"""

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from twin_gradient_check import gradients  # noqa: E402

from neuroaikit.errors import ConfigError  # noqa: E402
from neuroaikit.execution import Execution, ExecutionConfig  # noqa: E402
from neuroaikit.neural import SyntheticCortex, TwinFitConfig, TwinModelConfig  # noqa: E402
from neuroaikit.neural.fit import _Trainer  # noqa: E402
from neuroaikit.progress import silent  # noqa: E402


def counted_trials(trainer: _Trainer) -> float:
    """Train trials one epoch counts, over all processes."""
    counts = []
    batch_loss = trainer.batch_loss

    def counting(*args, **kwargs):
        loss, counted = batch_loss(*args, **kwargs)
        counts.append(counted)
        return loss, counted

    trainer.batch_loss = counting  # type: ignore[method-assign]
    trainer._train_epoch()
    return trainer.ex.all_sum([float(sum(counts))])[0]


def main() -> int:
    torch.set_num_threads(1)
    ds = SyntheticCortex(n_neurons=6, image_shape=(10, 12), seed=3).sample(n_train=9, n_validation=4,
                                                                           n_test_images=2, repeats=2)
    n_train = int(ds.tier_mask("train").sum())
    execution = ExecutionConfig(device="cpu", threads=1)
    cfg = TwinFitConfig(model=TwinModelConfig(hidden_channels=4, layers=2), batch_size=4, execution=execution)
    failures = []
    with Execution(execution) as ex:
        try:
            _Trainer(ds, cfg.replace(batch_size=1), ex, silent())
            failures.append("batch_size 1 with 2 processes was not refused")
        except ConfigError as exc:
            if str(exc) != "batch_size 1 is smaller than the 2 processes":
                failures.append(f"refusal says {exc}")
        seen = counted_trials(_Trainer(ds, cfg, ex, silent()))
        if seen != n_train:
            failures.append(f"one epoch counted {seen:g} of the {n_train} train trials")
        last = np.arange(8, 9)  # a global batch of 1 trial: fewer trials than processes
        shared = gradients(_Trainer(ds, cfg, ex, silent()), last)
        if ex.rank == 0:
            with Execution(execution, join_group=False) as alone:
                reference = gradients(_Trainer(ds, cfg, alone, silent()), last)
            worst = max(float((shared[n] - reference[n]).abs().max() / (reference[n].abs().max() + 1e-12))
                        for n in reference)
            print(f"largest relative gradient difference of a 1-trial batch: {worst:.3g}")
            if worst >= 1e-5 or set(shared) != set(reference):
                failures.append("the 1-trial batch's gradient differs from one process's")
    for failure in failures:
        print(f"FAIL: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
