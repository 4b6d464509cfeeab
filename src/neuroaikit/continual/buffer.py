"""Memory buffers for experience replay: a reservoir and a class-balanced buffer.

Both hold ``(x, y, context)`` triples: images as the task showed them, targets in the
scenario's output space, and the task they came from. ``add`` takes a batch (a whole task's
data at a boundary, or a stream's batches one after another); ``sample`` draws uniformly,
without replacement when it can.
"""

from __future__ import annotations

import torch

from ..errors import ConfigError


class ReplayBuffer:
    """Base of the buffers: storage, sampling, state."""

    def __init__(self, size: int):
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ConfigError(f"buffer size must be an integer >= 1, got {size!r}")
        self.size = size
        self.x: torch.Tensor | None = None
        self.y = torch.zeros(0, dtype=torch.long)
        self.context = torch.zeros(0, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.y)

    def _store(self, x: torch.Tensor, y: torch.Tensor, context: torch.Tensor) -> None:
        self.x, self.y, self.context = x, y, context

    def _concat(self, x, y, context):
        if self.x is None:
            return x, y, context
        return torch.cat([self.x, x.to(self.x.device)]), torch.cat([self.y, y.to(self.y.device)]), \
            torch.cat([self.context, context.to(self.context.device)])

    def sample(self, n: int, generator: torch.Generator | None = None):
        """``n`` stored triples, uniformly (without replacement when ``n <= len``)."""
        if len(self) == 0 or self.x is None:
            raise ConfigError("the replay buffer is empty")
        if n <= len(self):
            index = torch.randperm(len(self), generator=generator)[:n]
        else:
            index = torch.randint(len(self), (n,), generator=generator)
        index = index.to(self.y.device)
        return self.x[index], self.y[index], self.context[index]

    def class_counts(self, n_outputs: int) -> list[int]:
        return torch.bincount(self.y.cpu(), minlength=n_outputs).tolist()

    def state_dict(self) -> dict:
        return {"x": self.x, "y": self.y, "context": self.context, **self._extra_state()}

    def _extra_state(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        self.x, self.y, self.context = state["x"], state["y"], state["context"]

    def to(self, device) -> "ReplayBuffer":
        if self.x is not None:
            self.x, self.y, self.context = self.x.to(device), self.y.to(device), self.context.to(device)
        return self


class ReservoirBuffer(ReplayBuffer):
    """Reservoir sampling (Vitter 1985): after ``n`` examples have streamed past, each is in the
    buffer with probability ``size / n``, whatever the task boundaries (so it suits task-free
    streams). It promises uniformity over the stream, not class balance."""

    def __init__(self, size: int):
        super().__init__(size)
        self.seen = 0

    def add(self, x: torch.Tensor, y: torch.Tensor, context: torch.Tensor,
            generator: torch.Generator | None = None) -> None:
        x, y, context = x.detach(), y.detach(), context.detach()
        room = min(max(0, self.size - len(self)), len(y))
        if room:
            # copies: the draws below overwrite stored rows in place, which must not reach the caller's batch
            self._store(*self._concat(x[:room].clone(), y[:room].clone(), context[:room].clone()))
        rest = torch.arange(room, len(y))
        if len(rest) == 0 or self.x is None:
            self.seen += len(y)
            return
        positions = self.seen + rest + 1  # 1-based position of each example in the stream
        draws = (torch.rand(len(rest), generator=generator) * positions).long()
        for i, slot in zip(rest.tolist(), draws.tolist()):
            if slot < self.size:
                self.x[slot], self.y[slot], self.context[slot] = x[i], y[i], context[i]
        self.seen += len(y)

    def _extra_state(self) -> dict:
        return {"seen": self.seen}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.seen = int(state["seen"])


class ClassBalancedBuffer(ReplayBuffer):
    """At most ``size`` examples, split equally over the classes seen so far; each class's share
    is a uniform random choice of every example of it offered so far, whether a task brought
    them at once or a stream in batches, and stays one when new classes arrive and the share
    shrinks. Classes differ by at most one example (when ``size`` does not divide evenly) or hold
    all they have, if fewer.

    Each example draws a random priority when it is offered, and each class keeps its examples of
    lowest priority (bottom-k sampling: the ``k`` lowest of i.i.d. priorities are a uniform
    ``k``-subset, and those of a smaller share are among them).

    ``add(..., keys=)`` balances over other groups than the targets (domain-incremental
    scenarios balance over (task, target) pairs, since every task has the same targets)."""

    def __init__(self, size: int):
        super().__init__(size)
        self.keys = torch.zeros(0, dtype=torch.long)
        self.priority = torch.zeros(0, dtype=torch.float64)

    def add(self, x: torch.Tensor, y: torch.Tensor, context: torch.Tensor,
            generator: torch.Generator | None = None, keys: torch.Tensor | None = None) -> None:
        x, y, context = x.detach(), y.detach(), context.detach()
        keys = y if keys is None else keys.detach()
        # on the CPU, as the generator: one float64 per stored example, on any device
        priority = torch.rand(len(y), generator=generator, dtype=torch.float64)
        all_keys = keys if self.x is None else torch.cat([self.keys.to(keys.device), keys])
        all_priority = priority if self.x is None else torch.cat([self.priority, priority])
        all_x, all_y, all_c = self._concat(x, y, context)
        keys_cpu = all_keys.cpu()
        classes = torch.unique(keys_cpu).tolist()
        quota, extra = divmod(self.size, len(classes))
        keep = []
        for rank, c in enumerate(classes):
            own = torch.nonzero(keys_cpu == c).flatten()
            share = quota + (1 if rank < extra else 0)
            if len(own) > share:
                own = own[torch.topk(all_priority[own], share, largest=False).indices]
            keep.append(own)
        index = torch.cat(keep).sort().values
        self.priority = all_priority[index]
        index = index.to(all_keys.device)
        self._store(all_x[index], all_y[index], all_c[index])
        self.keys = all_keys[index]

    def _extra_state(self) -> dict:
        return {"keys": self.keys, "priority": self.priority}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.keys = state["keys"]
        if "priority" in state:
            self.priority = state["priority"].cpu()
        else:  # a checkpoint from before priorities were kept: the stored examples draw theirs now
            self.priority = torch.rand(len(self.keys), generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    def to(self, device) -> "ClassBalancedBuffer":
        super().to(device)
        self.keys = self.keys.to(device)
        return self
