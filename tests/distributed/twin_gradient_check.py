"""Run under ``torchrun --nproc_per_node 2``: the data-parallel twin loss gives, after DDP's
averaging, exactly the gradient of the global batch computed by one process.

Batch norm uses its running statistics and the readout's position sampling is switched off
(sigma 0), so the only difference left between the two computations is how the batch is split;
the script exits 1 (and prints the largest difference) if the gradients differ. (The model stays
in training mode: DDP does not synchronise gradients of a module in eval mode.)
"""

import sys

import numpy as np
import torch

from neuroaikit.execution import Execution, ExecutionConfig
from neuroaikit.neural import SyntheticCortex, TwinFitConfig, TwinModelConfig
from neuroaikit.neural.fit import _Trainer
from neuroaikit.progress import silent


def gradients(trainer: _Trainer, batch: np.ndarray) -> dict:
    trainer.wrapped.train()
    for module in trainer.model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()
    with torch.no_grad():
        for readout in trainer.model.readouts.values():
            readout.sigma.zero_()
    trainer.opt.zero_grad(set_to_none=True)
    loss, _ = trainer.global_batch_loss(trainer.model.sessions[0], batch)
    loss.backward()
    return {n: p.grad.detach().clone() for n, p in trainer.model.named_parameters() if p.grad is not None}


def main() -> int:
    torch.set_num_threads(1)
    ds = SyntheticCortex(n_neurons=8, image_shape=(10, 12), seed=3).sample(n_train=120, n_validation=20,
                                                                            n_test_images=3, repeats=2)
    cfg = TwinFitConfig(model=TwinModelConfig(hidden_channels=4, layers=2), batch_size=37,
                        execution=ExecutionConfig(device="cpu", threads=1))
    batch = np.arange(5, 42)  # 37 trials: the two shares differ in size (18 and 19)
    with Execution(cfg.execution) as ex:
        shared = gradients(_Trainer(ds, cfg, ex, silent()), batch)
        if ex.rank != 0:
            return 0
        with Execution(cfg.execution, join_group=False) as alone:
            reference = gradients(_Trainer(ds, cfg, alone, silent()), batch)
    worst = max(float((shared[n] - reference[n]).abs().max() / (reference[n].abs().max() + 1e-12)) for n in reference)
    print(f"largest relative gradient difference: {worst:.3g}")
    return 0 if worst < 1e-5 and set(shared) == set(reference) else 1


if __name__ == "__main__":
    sys.exit(main())
