"""Generative replay: deep generative replay (Shin et al. 2017) with a separate variational
autoencoder, and brain-inspired replay (van de Ven, Siegelmann & Tolias 2020), whose generator
is folded into the classifier and replays class-conditionally through context gates."""

from __future__ import annotations

import math
from typing import ClassVar, cast

import torch
import torch.nn.functional as F
from torch import nn

from ...config import BOOL, POSITIVE, POSITIVE_INT, AppliesOnly, Interval
from .base import MASKED, Strategy, register_strategy, tensor_floats
from .replay import distil_replayed, forward_together, frozen_copy, previous_contexts, replay_loss


class VAE(nn.Module):
    """A fully connected variational autoencoder on flattened images in [0, 1].

    Args:
        in_features: pixels; ``hidden`` x ``layers`` ReLU units in the decoder (and in the
            encoder, unless ``encoder_features`` says the encoder is someone else's hidden layer).
        z_dim: latent units.
        n_modes: a Gaussian-mixture prior with one learned mean per mode (conditional replay); 0:
            the standard normal prior.
        gate_prop: fraction of the decoder's hidden units switched off per mode (context gates).
        encoder_features: build no encoder; ``encode`` takes hidden features of this width.
    """

    def __init__(self, in_features: int, hidden: int, layers: int, z_dim: int, n_modes: int = 0,
                 gate_prop: float = 0.0, encoder_features: int | None = None, seed: int = 0):
        super().__init__()
        self.in_features, self.z_dim = in_features, z_dim
        if encoder_features is None:
            blocks: list[nn.Module] = []
            width = in_features
            for _ in range(layers):
                blocks += [nn.Linear(width, hidden), nn.ReLU()]
                width = hidden
            self.encoder: nn.Module = nn.Sequential(*blocks)
        else:
            self.encoder, width = nn.Identity(), encoder_features
        self.mu, self.logvar = nn.Linear(width, z_dim), nn.Linear(width, z_dim)
        self.decoder = nn.ModuleList()
        width = z_dim
        for _ in range(layers):
            self.decoder.append(nn.Linear(width, hidden))
            width = hidden
        self.pixels = nn.Linear(width, in_features)
        self.prior_means: nn.Parameter | None = nn.Parameter(torch.randn(n_modes, z_dim) * 0.5) if n_modes else None
        generator = torch.Generator().manual_seed(seed)
        gates = (torch.rand(max(n_modes, 1), layers, hidden, generator=generator) >= gate_prop).float()
        self.register_buffer("gates", gates if gate_prop > 0 and n_modes else None)

    def encode(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(features)
        return self.mu(h), self.logvar(h)

    def decode(self, z: torch.Tensor, modes: torch.Tensor | None = None) -> torch.Tensor:
        """Pixel logits ``(B, in_features)``."""
        h = z
        for i, layer in enumerate(self.decoder):
            h = F.relu(layer(h))
            gates = self.gates
            if isinstance(gates, torch.Tensor) and modes is not None:
                h = h * gates[modes, i]
        return self.pixels(h)

    def losses(self, x_flat: torch.Tensor, features: torch.Tensor, modes: torch.Tensor | None = None) -> torch.Tensor:
        """Each example's reconstruction (binary cross-entropy) plus KL to the prior (of its
        mode), per pixel: ``(B,)``."""
        mu, logvar = self.encode(features)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        recon = F.binary_cross_entropy_with_logits(self.decode(z, modes), x_flat, reduction="none").sum(1)
        centre = self.prior_means[modes] if self.prior_means is not None and modes is not None else 0.0
        kl = 0.5 * (logvar.exp() + (mu - centre) ** 2 - 1 - logvar).sum(1)
        return (recon + kl) / self.in_features

    def loss(self, x_flat: torch.Tensor, features: torch.Tensor, modes: torch.Tensor | None = None) -> torch.Tensor:
        """:meth:`losses` averaged over the batch."""
        return self.losses(x_flat, features, modes).mean()

    @torch.no_grad()
    def sample(self, n: int, modes: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` images (flattened, in [0, 1]); ``modes`` picks each one's prior mode and gates."""
        z = torch.randn(n, self.z_dim, device=self.pixels.weight.device)
        if self.prior_means is not None and modes is not None:
            z = z + self.prior_means[modes]
        return torch.sigmoid(self.decode(z, modes))


class _GenerativeReplay(Strategy):
    needs_boundaries = True
    generator: VAE
    previous: nn.Module | None
    previous_generator: nn.Module | None

    def _frozen(self, module: nn.Module) -> nn.Module:
        return frozen_copy(module)

    def parameters(self) -> list[nn.Parameter]:
        return list(self.generator.parameters())

    def state_dict(self) -> dict:
        return {"generator": self.generator.state_dict(),
                "previous": None if self.previous is None else self.previous.state_dict(),
                "previous_generator": None if self.previous_generator is None else self.previous_generator.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.load_state_dict(state["generator"])
        if state["previous"] is not None:
            previous, previous_generator = self._frozen(self.learner.model), self._frozen(self.generator)
            previous.load_state_dict(state["previous"])
            previous_generator.load_state_dict(state["previous_generator"])
            self.previous, self.previous_generator = previous, previous_generator

    def after_task(self, t: int) -> None:
        self.previous = self._frozen(self.learner.model)
        self.previous_generator = self._frozen(self.generator)

    def memory(self) -> dict:
        kept = 0
        if self.previous is not None and self.previous_generator is not None:
            kept = tensor_floats(dict(self.previous.state_dict()), dict(self.previous_generator.state_dict()))
        return {"buffer_examples": 0, "stored_floats": tensor_floats(dict(self.generator.state_dict())) + kept}

    def _image(self, flat: torch.Tensor) -> torch.Tensor:
        return flat.reshape(len(flat), *self.learner.scenario.shape)


@register_strategy
class GenerativeReplay(_GenerativeReplay):
    """Deep generative replay (Shin et al. 2017; van de Ven et al.'s "DGR"): a separate VAE learns
    the inputs of every task (the current ones and its own replay); while learning task ``t`` each
    batch is accompanied by as many images sampled from the VAE of the end of task ``t-1``,
    labelled by the classifier of that time (hard labels, or soft ones with ``distill``).

    Args:
        z_dim (int): latent units. Default 100.
        distill (bool): replay soft targets (at ``temperature``) instead of labels. Default False.
        temperature (float): for ``distill`` (refused without it). Default 2.
    """

    name = "generative-replay"
    _parameter_constraints: ClassVar[dict] = {"z_dim": [POSITIVE_INT], "distill": [BOOL], "temperature": [POSITIVE]}

    _applies_only: ClassVar[tuple[AppliesOnly, ...]] = (
        AppliesOnly(("temperature",), lambda use: use.settings.distill, "applies only with {distill}"),
    )

    def __init__(self, z_dim: int = 100, distill: bool = False, temperature: float = 2.0):
        self.z_dim, self.distill, self.temperature = z_dim, distill, temperature
        self.previous: nn.Module | None = None
        self.previous_generator: nn.Module | None = None

    def setup(self, learner) -> None:
        pixels = math.prod(learner.scenario.shape)
        hidden = learner.model.fc1.out_features
        layers = sum(1 for name, _ in learner.model.named_children() if name.startswith("fc"))
        self.generator = VAE(pixels, hidden, layers, self.z_dim, seed=learner.seed).to(learner.device)
        super().setup(learner)

    def before_task(self, t: int) -> None:
        self._generator = self.learner.generator(t, 8)

    def loss(self, x, y, contexts, t):
        learner = self.learner
        flat = x.reshape(len(x), -1)
        learner.forward_examples += len(x)  # the VAE on the inputs
        if self.previous is None:
            loss, info = learner.classification_loss(x, y, contexts)
            return loss + self.generator.loss(flat, flat), info
        n = len(x)
        with torch.no_grad():
            assert self.previous_generator is not None
            replay_flat = cast(VAE, self.previous_generator).sample(n)
            replay_x = self._image(replay_flat)
            replay_ctx = previous_contexts(learner, t, n, self._generator)
            masks = learner.masks_for(t - 1)
            logits = self.previous(replay_x)
            logits = logits.masked_fill(~masks[replay_ctx], MASKED)
            targets = logits if self.distill else logits.argmax(1)
        learner.forward_examples += 3 * n  # old generator, old classifier, VAE on the replay
        # the current and the replayed batch go through the classifier, and the VAE, as one batch
        logits, replay_logits = forward_together(learner, x, contexts, replay_x, replay_ctx)
        loss, info = learner.classification_loss(x, y, contexts, logits=logits)
        replayed = replay_loss(learner, replay_x, replay_ctx, targets, self.distill, masks, self.temperature,
                               logits=replay_logits)
        both = torch.cat([flat, replay_flat])
        gen_losses = self.generator.losses(both, both)
        gen_loss, replay_gen = gen_losses[:n].mean(), gen_losses[n:].mean()
        w = learner.replay_weight(t)
        info["loss_replay"] = float(replayed.detach())
        return w * (loss + gen_loss) + (1 - w) * (replayed + replay_gen), info


@register_strategy
class BrainInspiredReplay(_GenerativeReplay):
    """Brain-inspired replay (van de Ven, Siegelmann & Tolias 2020, Nat Commun 11:4069), as far as
    it applies to a fully connected network: **replay through feedback** (the VAE's encoder is
    the classifier's hidden layers, so one network both classifies and generates),
    **conditional replay** (a Gaussian-mixture prior with one learned mode per class; per
    (task, class) in domain-IL), **context gates** in the decoder (a random ``gate_prop`` of its
    units off for each mode) and **distillation** (replayed images carry the previous network's
    soft answers). Internal replay (of hidden features below a frozen convolutional stage) has
    no place in an MLP and is not done.

    Args:
        z_dim (int): latent units. Default 100.
        gate_prop (float | None): decoder units gated per mode (``None``: van de Ven et al.'s 0
            for task-IL, 0.1 for domain and class-IL on Split MNIST, 0.5 / 0.7 on Permuted MNIST).
        temperature (float): distillation temperature. Default 2.
    """

    name = "brain-inspired-replay"
    _parameter_constraints: ClassVar[dict] = {
        "z_dim": [POSITIVE_INT],
        "gate_prop": [Interval(float, 0, 1, closed="left"), None],
        "temperature": [POSITIVE],
    }

    def __init__(self, z_dim: int = 100, gate_prop: float | None = None, temperature: float = 2.0):
        self.z_dim, self.gate_prop, self.temperature = z_dim, gate_prop, temperature
        self.previous: nn.Module | None = None
        self.previous_generator: nn.Module | None = None

    def setup(self, learner) -> None:
        scenario = learner.scenario
        if self.gate_prop is None:
            table = {"task": 0.0, "domain": 0.1 if scenario.benchmark != "permuted-mnist" else 0.5,
                     "class": 0.1 if scenario.benchmark != "permuted-mnist" else 0.7}
            self.gate_prop = table[scenario.kind]
        hidden = learner.model.fc1.out_features
        layers = sum(1 for name, _ in learner.model.named_children() if name.startswith("fc"))
        self.n_modes = scenario.n_outputs * (scenario.n_tasks if scenario.outputs_shared else 1)
        self.generator = VAE(math.prod(scenario.shape), hidden, layers, self.z_dim, n_modes=self.n_modes,
                             gate_prop=self.gate_prop, encoder_features=hidden, seed=learner.seed).to(learner.device)
        super().setup(learner)

    def before_task(self, t: int) -> None:
        self._generator = self.learner.generator(t, 9)

    def _modes(self, y: torch.Tensor, contexts: torch.Tensor | int) -> torch.Tensor:
        if self.learner.scenario.outputs_shared:
            return y + contexts * self.learner.scenario.n_outputs
        return y

    def _hidden(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        for name, layer in model.named_children():  # the MLP's layers before its output layer
            if name != "out":
                x = layer(x)
        return x

    def _classify_and_reconstruct(self, x: torch.Tensor, modes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits of ``x`` and each example's generator loss, through the one network."""
        model = self.learner.model
        hidden = self._hidden(model, x)
        self.learner.forward_examples += len(x)
        return model.get_submodule("out")(hidden), self.generator.losses(x.reshape(len(x), -1), hidden, modes)

    def loss(self, x, y, contexts, t):
        learner = self.learner
        modes = self._modes(y, t)
        if self.previous is None:
            logits, gen_losses = self._classify_and_reconstruct(x, modes)
            task_loss = F.cross_entropy(learner.mask(logits, contexts), y)
            return task_loss + gen_losses.mean(), {"loss_current": float(task_loss.detach())}
        n = len(x)
        scenario = learner.scenario
        with torch.no_grad():
            pairs = torch.tensor([(task.index, o) for task in scenario.tasks[:t] for o in task.outputs])
            pick = pairs[torch.randint(len(pairs), (n,), generator=self._generator)].to(learner.device)
            replay_ctx = pick[:, 0] if scenario.kind == "task" else torch.full((n,), t - 1, device=learner.device)
            replay_modes = self._modes(pick[:, 1], pick[:, 0])
            assert self.previous_generator is not None
            replay_x = self._image(cast(VAE, self.previous_generator).sample(n, replay_modes))
            masks = learner.masks_for(t - 1)
            targets = self.previous(replay_x).masked_fill(~masks[replay_ctx], MASKED)
        learner.forward_examples += 2 * n
        # the current and the replayed batch go through the network as one batch (see forward_together)
        logits, gen_losses = self._classify_and_reconstruct(torch.cat([x, replay_x]), torch.cat([modes, replay_modes]))
        task_loss = F.cross_entropy(learner.mask(logits[:n], contexts), y)
        replay_task = distil_replayed(learner, logits[n:], replay_ctx, targets, masks, self.temperature)
        info = {"loss_current": float(task_loss.detach()), "loss_replay": float(replay_task.detach())}
        w = learner.replay_weight(t)
        return w * (task_loss + gen_losses[:n].mean()) + (1 - w) * (replay_task + gen_losses[n:].mean()), info
