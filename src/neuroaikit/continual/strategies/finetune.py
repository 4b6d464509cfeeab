"""The bounds: fine-tuning (no protection against forgetting) and joint training."""

from __future__ import annotations

import torch

from .base import Strategy, register_strategy


@register_strategy
class Finetune(Strategy):
    """Fine-tuning, the lower bound: each task trained in turn with its own loss only
    (van de Ven et al.'s "None")."""

    name = "finetune"
    subnetwork_exact = True

    def __init__(self):
        pass


@register_strategy
class Joint(Strategy):
    """Joint training, the upper bound: while learning task ``t`` every batch is drawn from the
    union of tasks ``0..t`` (in proportion to their sizes), so nothing is ever out of reach.
    An offline reference: it needs the task boundaries and keeps all data."""

    name = "joint"
    needs_boundaries = True

    def __init__(self):
        pass

    def batch(self, t: int):
        learner = self.learner
        tasks = learner.scenario.tasks[: t + 1]
        sizes = torch.tensor([task.n_train for task in tasks], dtype=torch.float64)
        pick = torch.multinomial(sizes / sizes.sum(), learner.batch_size, replacement=True, generator=self._generator)
        xs, ys, cs = [], [], []
        for s in pick.unique().tolist():
            n = int((pick == s).sum())
            task = tasks[s]
            index = torch.randint(task.n_train, (n,), generator=self._generator).to(task.train_y.device)
            x, y = task.train_batch(index)
            xs.append(x)
            ys.append(y)
            cs.append(torch.full((n,), s, dtype=torch.long, device=y.device))
        return torch.cat(xs), torch.cat(ys), torch.cat(cs)

    def before_task(self, t: int) -> None:
        self._generator = self.learner.generator(t, 3)

    def memory(self) -> dict:
        t = self.learner.task
        return {"buffer_examples": sum(task.n_train for task in self.learner.scenario.tasks[:t]), "stored_floats": 0}
