"""Replay: learning without forgetting (replaying the current inputs with the old network's
answers) and experience replay from a memory buffer."""

from __future__ import annotations

import copy
from typing import ClassVar

import torch
import torch.nn.functional as F

from ...config import POSITIVE, POSITIVE_INT, AppliesOnly, Options
from ...errors import ConfigError
from ..buffer import ClassBalancedBuffer, ReservoirBuffer
from .base import MASKED, Strategy, published, register_strategy, tensor_floats

#: how distillation treats the outputs the old network did not use (:func:`distil_replayed`)
NEW_OUTPUTS = ("zero", "ignore")
#: task-IL, the earlier heads LwF distils each current input through (:class:`LwF`)
HEADS = ("all", "sampled")
#: how LwF sums its distillation over the output units (:func:`distil_replayed`)
DISTILLATION = ("sum", "unit_mean")
#: examples per class of van de Ven et al. 2022's buffers (param_values.py: "budget")
BUDGET = {("split-mnist", "*"): 100, ("permuted-mnist", "*"): 10}


def distillation_loss(logits: torch.Tensor, target_logits: torch.Tensor, temperature: float = 2.0,
                      reduction: str = "batchmean") -> torch.Tensor:
    """Knowledge distillation (Hinton et al. 2015): ``T^2 KL(softmax(target/T) || softmax(logits/T))``,
    averaged over the batch (``reduction="none"``: one value per example; both logits already
    masked to the same outputs)."""
    if reduction not in ("batchmean", "none"):
        raise ValueError(f"reduction must be 'batchmean' or 'none', got {reduction!r}")
    target = F.softmax(target_logits / temperature, dim=1)
    divergence = F.kl_div(F.log_softmax(logits / temperature, dim=1), target, reduction="none").sum(1)
    return (divergence if reduction == "none" else divergence.mean()) * temperature ** 2


def forward_together(learner, x: torch.Tensor, contexts: torch.Tensor | None, replay_x: torch.Tensor,
                     replay_contexts: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The network's logits for the current batch and for the replayed one, computed as one batch.

    The protocol's MLP treats examples independently, so the values are those of two passes; but
    each weight matrix is read once and its gradient comes out of one product, where two passes
    leave autograd two weight-sized gradients to add up."""
    # contexts are None exactly in a task-free stream, for both batches
    assert (contexts is None) == (replay_contexts is None), "both batches have contexts or neither has"
    both = None if contexts is None or replay_contexts is None else torch.cat([contexts, replay_contexts])
    logits = learner.forward(torch.cat([x, replay_x]), both)
    return logits[:len(x)], logits[len(x):]


def replay_loss(learner, x: torch.Tensor, contexts: torch.Tensor | None, targets: torch.Tensor, soft: bool,
                masks: torch.Tensor | None, temperature: float, new_outputs: str = "zero",
                logits: torch.Tensor | None = None) -> torch.Tensor:
    """The loss on replayed examples: distillation against ``targets`` (logits, see
    :func:`distil_replayed`) or cross-entropy on ``targets`` (labels), over the outputs the
    replayed contexts may use now; ``logits``: the network's answer to ``x``, when the caller has
    it already (:func:`forward_together`)."""
    logits = learner.forward(x, contexts) if logits is None else logits
    if soft:
        assert masks is not None, "soft targets need the masks they were made with"
        return distil_replayed(learner, logits, contexts, targets, masks, temperature, new_outputs)
    return F.cross_entropy(learner.mask(logits, contexts), targets)


def distil_replayed(learner, logits: torch.Tensor, contexts: torch.Tensor | None, targets: torch.Tensor,
                    masks: torch.Tensor, temperature: float, new_outputs: str = "zero",
                    distillation: str = "sum") -> torch.Tensor:
    """Distillation of replayed examples' ``logits`` against the old network's ``targets``.

    ``masks`` are the context masks of the task the targets were made in. In class-IL the network
    now also answers with the current task's classes, which the old network never did.
    ``new_outputs="zero"`` gives them target probability 0, so distillation also teaches the
    network not to call old inputs new classes (van de Ven et al.'s code pads the targets with
    zeros); ``"ignore"`` distils over the old outputs only (Li & Hoiem's LwF).

    ``distillation="sum"``: each example's divergence summed over the output units (Hinton et
    al.); ``"unit_mean"``: divided by the number of units it runs over, as van de Ven et al.'s
    code computed it until its fix of May 2019 (``utils.loss_fn_kd`` averaged over the batch
    *and* the units), after the 2019 paper's figures were made.
    """
    made_with = masks[contexts] if contexts is not None else masks[0].expand_as(logits)
    logits = learner.mask(logits, contexts)
    if new_outputs == "ignore":
        logits = logits.masked_fill(~made_with, MASKED)
    per_example = distillation_loss(logits, targets.masked_fill(~made_with, MASKED), temperature, reduction="none")
    if distillation == "unit_mean":
        per_example = per_example / (logits > MASKED).sum(1)
    return per_example.mean()


def frozen_copy(module: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``module`` that does not learn (the network as it was at a task boundary)."""
    frozen = copy.deepcopy(module)
    for p in frozen.parameters():
        p.requires_grad_(False)
    return frozen.eval()


def previous_contexts(learner, t: int, n: int, generator: torch.Generator) -> torch.Tensor | None:
    """Contexts for ``n`` replayed examples when learning task ``t``: task-IL spreads them over the
    earlier tasks' heads at random; otherwise they answer in the current context."""
    if learner.scenario.task_free:
        return None
    if learner.scenario.kind == "task":
        return torch.randint(t, (n,), generator=generator).to(learner.device)
    return torch.full((n,), t - 1, dtype=torch.long, device=learner.device)


@register_strategy
class LwF(Strategy):
    """Learning without forgetting (Li & Hoiem 2017), as van de Ven et al. run it: the current
    task's inputs are replayed with the soft answers (temperature ``T``) of the network as it
    was at the end of the previous task; loss = ``1/t`` current + ``(1 - 1/t)`` distillation.

    Args:
        temperature (float): distillation temperature. Default 2.
        new_outputs (str): class-IL, the classes the old network never answered with:
            ``"ignore"`` (default) distils over the old classes only (Li & Hoiem); ``"zero"``
            distils them as probability 0 (as van de Ven et al.'s code pads the targets), which
            on Split MNIST at the published protocol stops the network from learning any task
            after the first, since the replayed inputs are the current task's own
            (``continual_distillation_class`` results page). Refused in task- and domain-IL,
            where it would change nothing.
        heads (str): task-IL, which earlier heads each current input is distilled through:
            ``"all"`` (default) every earlier task's head, averaged over the heads (van de Ven
            et al.'s code); ``"sampled"`` one earlier head drawn at random per input (the same
            expected loss, noisier). Refused in the other scenarios, which have one head.
        distillation (str): ``"sum"`` (default) sums each input's divergence over the output
            units, as knowledge distillation is defined; ``"unit_mean"`` divides it by the number
            of units (10 per head on MNIST; in class-IL every class so far), as van de Ven &
            Tolias's code did when their 2019 figures were made (fixed in May 2019): a
            distillation that many times weaker (``distil_replayed``).
    """

    name = "lwf"
    _parameter_constraints: ClassVar[dict] = {"temperature": [POSITIVE], "new_outputs": [Options(NEW_OUTPUTS)],
                                              "heads": [Options(HEADS)], "distillation": [Options(DISTILLATION)]}

    _applies_only: ClassVar[tuple[AppliesOnly, ...]] = (
        AppliesOnly(("new_outputs",), lambda use: use.scenario in (None, "class"),
                    "applies only to the class-incremental scenario (in the others the old network answers "
                    "with every output)"),
        AppliesOnly(("heads",), lambda use: use.scenario in (None, "task"),
                    "applies only to the task-incremental scenario (the others have one head)"),
    )

    def __init__(self, temperature: float = 2.0, new_outputs: str = "ignore", heads: str = "all",
                 distillation: str = "sum"):
        self.temperature, self.new_outputs, self.heads = temperature, new_outputs, heads
        self.distillation = distillation
        self.previous: torch.nn.Module | None = None

    def before_task(self, t: int) -> None:
        self._generator = self.learner.generator(t, 6)

    def loss(self, x, y, contexts, t):
        learner = self.learner
        # LwF's network does not depend on the context: one forward pass serves the current
        # loss and every distillation of the same inputs
        logits = learner.forward(x, contexts)
        loss, info = learner.classification_loss(x, y, contexts, logits)
        if self.previous is None or t == 0:
            return loss, info
        with torch.no_grad():
            learner.forward_examples += len(x)
            targets = self.previous(x)
        masks = learner.masks_for(t - 1)
        if self.heads == "all" and learner.scenario.kind == "task" and not learner.scenario.task_free:
            replayed = torch.stack([
                distil_replayed(learner, logits, torch.full_like(y, head), targets, masks, self.temperature,
                                self.new_outputs, self.distillation) for head in range(t)]).mean()
        else:
            replay_ctx = previous_contexts(learner, t, len(x), self._generator)
            replayed = distil_replayed(learner, logits, replay_ctx, targets, masks, self.temperature,
                                       self.new_outputs, self.distillation)
        w = learner.replay_weight(t)
        info["loss_replay"] = float(replayed.detach())
        return w * loss + (1 - w) * replayed, info

    def after_task(self, t: int) -> None:
        self.previous = frozen_copy(self.learner.model)

    def state_dict(self) -> dict:
        return {"previous": None if self.previous is None else self.previous.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if state["previous"] is not None:
            self.previous = frozen_copy(self.learner.model)
            self.previous.load_state_dict(state["previous"])

    def memory(self) -> dict:
        return {"buffer_examples": 0,
                "stored_floats": 0 if self.previous is None else tensor_floats(dict(self.previous.state_dict()))}


@register_strategy
class ExperienceReplay(Strategy):
    """Experience replay from a memory buffer (van de Ven et al.'s "ER"): after each task (or, in a
    task-free stream, after each batch) examples enter the buffer; every batch of the current task
    is accompanied by a batch drawn from it; loss = ``1/t`` current + ``(1 - 1/t)`` replay.

    Args:
        buffer (str): ``"class-balanced"`` (:class:`~neuroaikit.continual.ClassBalancedBuffer`)
            or ``"reservoir"`` (:class:`~neuroaikit.continual.ReservoirBuffer`).
        size (int | None): examples the buffer holds (``None``: ``per_class`` x the classes of
            the stream: van de Ven et al.'s budget).
        per_class (int | None): budget per class when ``size`` is ``None`` (refused with ``size``;
            ``None``: 100 for Split MNIST, 10 for Permuted MNIST).
        replay_batch (int | None): replayed examples per iteration (``None``: the batch size).
    """

    name = "replay"
    _parameter_constraints: ClassVar[dict] = {
        "buffer": [Options(("class-balanced", "reservoir"))],
        "size": [POSITIVE_INT, None],
        "per_class": [POSITIVE_INT, None],
        "replay_batch": [POSITIVE_INT, None],
    }

    _applies_only: ClassVar[tuple[AppliesOnly, ...]] = (
        AppliesOnly(("per_class",), lambda use: use.settings.size is None,
                    "applies only without {size}, which sets the whole buffer"),
    )

    def __init__(self, buffer: str = "class-balanced", size: int | None = None, per_class: int | None = None,
                 replay_batch: int | None = None):
        self.buffer, self.size, self.per_class, self.replay_batch = buffer, size, per_class, replay_batch

    def setup(self, learner) -> None:
        super().setup(learner)
        scenario = learner.scenario
        n_train = sum(task.n_train for task in scenario.tasks)
        if self.size is None:
            self.per_class = self.per_class or published(BUDGET, scenario.benchmark, "*", 100)
            self.size = self.per_class * scenario.n_outputs if not scenario.outputs_shared else \
                self.per_class * scenario.n_outputs * scenario.n_tasks
        if self.size > n_train:
            raise ConfigError(f"a replay buffer of {self.size} examples is larger than the {n_train} training "
                              f"examples of the whole stream; choose a smaller size or per_class")
        self.replay_batch = self.replay_batch or learner.batch_size
        self.memory_ = (ClassBalancedBuffer if self.buffer == "class-balanced" else ReservoirBuffer)(self.size)

    def before_task(self, t: int) -> None:
        self._generator = self.learner.generator(t, 7)

    def loss(self, x, y, contexts, t):
        learner = self.learner
        if learner.scenario.task_free:
            self.memory_.add(x, y, torch.full_like(y, -1), self._generator)
        if len(self.memory_) == 0 or (t == 0 and not learner.scenario.task_free):
            return learner.classification_loss(x, y, contexts)
        rx, ry, rc = self.memory_.sample(int(self.replay_batch or learner.batch_size), self._generator)
        rc = None if learner.scenario.task_free else rc
        logits, replay_logits = forward_together(learner, x, contexts, rx, rc)
        loss, info = learner.classification_loss(x, y, contexts, logits=logits)
        replayed = replay_loss(learner, rx, rc, ry, False, None, 1.0, logits=replay_logits)
        w = 0.5 if learner.scenario.task_free else learner.replay_weight(t)
        info["loss_replay"] = float(replayed.detach())
        return w * loss + (1 - w) * replayed, info

    def after_task(self, t: int) -> None:
        if self.learner.scenario.task_free:
            return
        task = self.learner.scenario.tasks[t]
        x, y = task.view(task.train_x), task.train_y
        contexts = torch.full_like(y, t)
        if isinstance(self.memory_, ClassBalancedBuffer):
            # tasks that share their outputs (domain-IL, a shared head): balance over (task, target)
            keys = y + t * self.learner.scenario.n_outputs if self.learner.scenario.outputs_shared else y
            self.memory_.add(x, y, contexts, self._generator, keys=keys)
            return
        order = torch.randperm(len(y), generator=self._generator).to(y.device)  # a reservoir sees them shuffled
        self.memory_.add(x[order], y[order], contexts, self._generator)

    def state_dict(self) -> dict:
        return {"buffer": self.memory_.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.memory_.load_state_dict(state["buffer"])

    def memory(self) -> dict:
        stored = len(self.memory_)
        floats = 0 if self.memory_.x is None else self.memory_.x.numel()
        return {"buffer_examples": stored, "stored_floats": floats}
