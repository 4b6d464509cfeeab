"""Run under ``torchrun --nproc_per_node 2``: the epoch loss a twin fit records in its history is
the one process's, not divided by the process count.

11 train trials in batches of 5: two batches split unevenly (2 and 3 trials) and a last batch of
1 trial, which every process computes and rank 0 alone counts. Batch norm uses its running
statistics, the readout's position sampling is switched off (sigma 0) and the learning rate is
tiny, so the only difference left between the fits is how each batch is split. Exits 1 (printing
both histories) if the losses differ.
"""

import sys

import torch

from neuroaikit.execution import Execution, ExecutionConfig
from neuroaikit.neural import SyntheticCortex, TwinFitConfig, TwinModelConfig
from neuroaikit.neural.fit import _Trainer
from neuroaikit.progress import silent

N_TRAIN = 11


def history_losses(trainer: _Trainer) -> list[float]:
    for module in trainer.model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()
            # the fit switches the model to training mode every epoch: keep the running statistics
            module.train = lambda mode=True, module=module: module  # type: ignore[method-assign]
    with torch.no_grad():
        for readout in trainer.model.readouts.values():
            readout.sigma.zero_()
    _, history = trainer.fit(None, None, None)
    return [row["loss"] for row in history if "loss" in row]


def main() -> int:
    torch.set_num_threads(1)
    ds = SyntheticCortex(n_neurons=6, image_shape=(10, 12), seed=3).sample(n_train=N_TRAIN, n_validation=4,
                                                                           n_test_images=2, repeats=2)
    n_train = int(ds.tier_mask("train").sum())
    execution = ExecutionConfig(device="cpu", threads=1)
    cfg = TwinFitConfig(model=TwinModelConfig(hidden_channels=4, layers=2), batch_size=5, lr=1e-9, max_epochs=2,
                        execution=execution)
    with Execution(execution) as ex:
        shared = history_losses(_Trainer(ds, cfg, ex, silent()))
        if ex.rank != 0:
            return 0
        with Execution(execution, join_group=False) as alone:
            reference = history_losses(_Trainer(ds, cfg, alone, silent()))
    print(f"epoch losses over {n_train} train trials: 1 process {reference}, 2 processes {shared}")
    if n_train != N_TRAIN or len(shared) != 2 or len(reference) != 2:
        print("FAIL: the fit was not the one this check means")
        return 1
    worst = max(abs(a - b) / abs(b) for a, b in zip(shared, reference))
    print(f"largest relative epoch loss difference: {worst:.3g}")
    return 0 if worst < 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
