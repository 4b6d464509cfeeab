"""The training loop: one run-folder lifecycle, the execution layer, seeded everything.

``train(config, out)`` validates everything (output folder, data, model, noise sites,
objective) before it creates ``out.partial``; saves an atomic checkpoint after every epoch;
commits the run folder by rename when the final evaluation is done. Under ``torchrun`` it
trains data-parallel (see :mod:`neuroaikit.execution`).
"""

from __future__ import annotations

import os
import time
from typing import Callable, Sequence

import torch
from torch import nn

from ..data import dataset_info, load_train_test
from ..data.paths import find_dataset_folder
from ..errors import ConfigError
from ..execution import Execution, derive_seed, unwrap
from ..models import build_from_spec, model_spec
from ..noise import NOISE_STREAM, InferenceRule, accuracy, noise_layers, noise_mode, seed_noise
from ..progress import Progress, default_progress
from ..runs import Run, RunWriter
from .augment import augment_batch
from .config import TrainConfig
from .objectives import get_objective
from .results import TrainingResult

#: the part of a derived seed that sets torch's global RNG in each epoch (objectives, dropout)
GLOBAL_STREAM = 0x474C4F42

# called at the end of each epoch (on the writing process); may return extra figures for that
# epoch's record, and {"stop_training": 1} to end training after that epoch's checkpoint. A
# callback with state_dict() / load_state_dict(state) has that state saved in every checkpoint
# and put back on --resume, so that it decides what it would have decided uninterrupted
EpochCallback = Callable[[nn.Module, int, dict], "dict | None"]


def resolve_device(name: str) -> torch.device:
    """Kept for callers of the old API; see :func:`neuroaikit.execution.resolve_device`."""
    from ..execution import resolve_device as resolve

    return resolve(name)


def build_model_for(config: TrainConfig, dataset) -> tuple[nn.Module, dict]:
    """The configured model sized for ``dataset``, and the spec that rebuilds it."""
    channels, size, _ = dataset.images.shape[1:]
    return _sized_model(config, channels, size, len(dataset.classes))


def _sized_model(config: TrainConfig, channels: int, size: int, n_classes: int) -> tuple[nn.Module, dict]:
    kwargs = {"in_channels": channels, "image_size": size, "n_classes": n_classes}
    kwargs.update(config.model_kwargs)
    spec = model_spec(config.model, kwargs, config.noise)
    return build_from_spec(spec), spec


def check_train_config(config: TrainConfig) -> None:
    """Refuse ``config`` in one line if its data files are missing or its model cannot be built
    (unknown model, bad ``model_kwargs``, a noise site the model lacks), without reading the data:
    the shapes come from the data set's catalogue entry. A sweep checks every trial this way
    before it creates its folder; :func:`train` still checks everything on the data it loads."""
    info = dataset_info(config.dataset)
    model, _ = _sized_model(config, info.channels, info.image_size, info.n_classes)
    _check_objective(config, model, torch.zeros(2, *info.shape), torch.zeros(2, dtype=torch.long))
    if config.norm_bound is not None:  # a model without hidden Gaussian noise has no layers to bound
        from ..certify.training import PreNoiseNormBound

        PreNoiseNormBound(model, config.norm_bound, tuple(info.shape))
    if info.needs_files:
        for split in ("train", "test"):
            find_dataset_folder(info.name, config.data_dir, split)


def noise_sites(config: TrainConfig) -> list[str]:
    """The noise layers of the model ``config`` builds (``--noise`` sites and a model's own, such
    as v1net's), sized from the data set's catalogue entry without reading the data."""
    info = dataset_info(config.dataset)
    model, _ = _sized_model(config, info.channels, info.image_size, info.n_classes)
    return [name for name, _ in noise_layers(model)]


def _optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError(f"model {config.model!r} has no trainable parameters")
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, nesterov=config.momentum > 0,
                               weight_decay=config.weight_decay)
    return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)


def _scheduler(config: TrainConfig, optimizer, steps_per_epoch: int):
    total = config.epochs * steps_per_epoch
    if config.schedule == "step":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, [int(total * 0.5), int(total * 0.75)], 0.1)
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, total)
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, config.lr, total_steps=total)
    return None


def evaluate_classifier(model: nn.Module, images, labels, rule: str, n_draws: int) -> dict:
    """Test accuracy with one draw, under the deployed rule, and with the noise off."""
    with noise_mode(model, "on"):
        figures = {
            "single": accuracy(model, images, labels, "single"),
            f"{rule}@{n_draws}": accuracy(model, images, labels, rule, n_draws),
        }
    with noise_mode(model, "off"):
        figures["noise_off"] = accuracy(model, images, labels, "single")
    return figures


def _set_noise_scale(model: nn.Module, warmup_epochs: float, progress_epochs: float) -> None:
    scale = 1.0 if warmup_epochs <= 0 else min(1.0, progress_epochs / warmup_epochs)
    for _, layer in noise_layers(model):
        layer.scale = scale


def _check_objective(config: TrainConfig, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    """Run the objective once on two examples ``x``, ``y``, so bad objective parameters fail
    before the run folder exists rather than after an epoch."""
    objective = get_objective(config.objective)
    try:
        objective(model, x, y, **config.objective_params)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"objective {config.objective!r}: {_first_line(exc)}") from None
    except torch.OutOfMemoryError:
        raise
    except RuntimeError as exc:
        shapes = ("shape", "size mismatch", "mat1 and mat2", "channels", "dimension", "Given groups", "Kernel size")
        if any(phrase in str(exc) for phrase in shapes):
            raise ConfigError(f"model {config.model!r} with model_kwargs {config.model_kwargs} does not take "
                              f"{config.dataset}'s inputs {tuple(x.shape[1:])}: {_first_line(exc)}") from None
        raise ConfigError(f"objective {config.objective!r}: {_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def train(
    config: TrainConfig,
    out: str | os.PathLike,
    *,
    resume: bool = False,
    overwrite: bool = False,
    callbacks: Sequence[EpochCallback] = (),
    progress: Progress | None = None,
) -> Run:
    """Train the configured model and write the run folder ``out``; returns the finished :class:`~neuroaikit.runs.Run`.

    Args:
        config: what to train.
        out: the run folder to create.
        resume: continue the interrupted job in ``out.partial`` (its settings must match;
            execution settings and the process count may change).
        overwrite: replace a finished run at ``out`` (it is removed only once the new one is
            complete), or discard an interrupted job.
        callbacks: called after each epoch (see ``EpochCallback``).
        progress: messages and progress bars (default: shown, plain lines when not a terminal).
    """
    progress = default_progress(progress)
    with Execution(config.execution) as ex:
        progress.for_rank(ex.rank)
        writer = RunWriter(out, config, overwrite=overwrite, resume=resume, is_main=ex.is_main, progress=progress,
                           execution=ex)
        train_set, test_set = load_train_test(config.dataset, config.data_dir, train_subset=config.train_subset,
                                              test_subset=config.test_subset, progress=progress)
        ex.require_shares(config.batch_size, "batch_size")
        torch.manual_seed(config.seed)
        model, spec = build_model_for(config, train_set)
        _check_objective(config, model, train_set.images[:2], train_set.labels[:2])
        torch.manual_seed(config.seed)
        model, spec = build_model_for(config, train_set)  # afresh: the check drew noise and changed BN statistics
        constraint = None
        if config.norm_bound is not None:
            from ..certify.training import PreNoiseNormBound

            constraint = PreNoiseNormBound(model, config.norm_bound, tuple(train_set.images.shape[1:]))
        with writer:
            return _train(config, writer, ex, model, spec, train_set, test_set, callbacks, progress, constraint)


def _callback_state(callback) -> dict | None:
    if not callable(getattr(callback, "state_dict", None)):
        return None
    return {"callback": type(callback).__qualname__, "state": callback.state_dict()}


def _restore_callbacks(callbacks: Sequence[EpochCallback], saved: list | None, epoch: int) -> None:
    """Put the checkpoint's callback states back, the stateful callbacks matched in order; refuse
    one the checkpoint has no state for (it would start afresh after ``epoch`` and decide otherwise
    than uninterrupted)."""
    states = [entry for entry in saved or [] if isinstance(entry, dict)]
    stateful: list = [c for c in callbacks if callable(getattr(c, "load_state_dict", None))]
    for i, callback in enumerate(stateful):
        name = type(callback).__qualname__
        entry = states[i] if i < len(states) else None
        if entry is None or entry.get("callback") != name:
            raise ConfigError(f"--resume: the checkpoint after epoch {epoch} holds no state of the callback {name}: "
                              f"the interrupted job ran without it; resume with the callbacks it ran with, or "
                              f"pass --overwrite to start afresh")
        callback.load_state_dict(entry["state"])


def _train(config: TrainConfig, writer: RunWriter, ex: Execution, model: nn.Module, spec: dict, train_set, test_set,
           callbacks, progress: Progress, constraint: Callable[[], None] | None = None) -> Run:
    device = ex.device
    wrapped = ex.wrap(model)
    model = unwrap(wrapped)
    objective = get_objective(config.objective)
    optimizer = _optimizer(config, model)
    steps_per_epoch = -(-len(train_set) // config.batch_size)
    scheduler = _scheduler(config, optimizer, steps_per_epoch)
    scaler = ex.grad_scaler()
    history: list[dict] = []
    start_epoch, elapsed = 0, 0.0

    state = writer.load_checkpoint(map_location=device)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state.get("scheduler"):
            scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        history, start_epoch, elapsed = list(state["history"]), int(state["epoch"]), float(state["elapsed"])
        _restore_callbacks(callbacks, state.get("callbacks"), start_epoch)
        writer.say(f"resumed from {writer.checkpoint_path} after epoch {start_epoch} "
                   f"(written by {state.get('world_size', 1)} process(es), continuing with {ex.world_size})")
    # the interrupted job's last epoch asked to stop: it was killed between that checkpoint and
    # the commit, and finishes as it would have, with no further epoch
    end_epoch = start_epoch if history and history[-1].get("stop_training") else config.epochs
    if end_epoch < config.epochs:
        writer.say(f"the interrupted job had stopped after epoch {start_epoch} at a callback's request: "
                   "finishing it without further epochs")

    writer.say(f"training {config.model} on {config.dataset}: {len(train_set)} train / {len(test_set)} test images, "
               f"noise {config.noise or 'none'}, objective {config.objective}, device {device}, "
               f"precision {config.execution.precision}, {ex.world_size} process(es)")

    for epoch in range(start_epoch, end_epoch):
        t0 = time.perf_counter()
        # every stream restarts from (seed, epoch): a resumed job, on any number of processes,
        # draws what an uninterrupted one would
        data_rng = torch.Generator().manual_seed(derive_seed(config.seed, epoch))
        # tagged: derive_seed ignores trailing zeros, so rank 0's untagged seed would be data_rng's own
        # and an objective's noise or random start would repeat the numbers that drew the data order
        torch.manual_seed(ex.process_seed(config.seed, epoch, GLOBAL_STREAM))
        # a stream of its own: seeded like the global RNG, the first noise layer would draw the
        # very numbers an objective takes from it (gaussian_augmentation's noise, a random start)
        seed_noise(model, ex.process_seed(config.seed, epoch, NOISE_STREAM))
        wrapped.train()
        order = torch.randperm(len(train_set), generator=data_rng)
        sums = torch.zeros(2, dtype=torch.float64)  # loss x examples, examples
        info_sums: dict[str, float] = {}
        with progress.task(f"epoch {epoch + 1}/{config.epochs}", total=steps_per_epoch, unit="batches") as task:
            for step, start in enumerate(range(0, len(train_set), config.batch_size)):
                idx = order[start : start + config.batch_size]
                _set_noise_scale(model, config.noise_warmup, epoch + step / steps_per_epoch)
                x_all = augment_batch(train_set.images[idx], config.augment, data_rng)
                x, counted = ex.share(x_all)
                y, _ = ex.share(train_set.labels[idx])
                x, y = x.to(device), y.to(device)
                with ex.autocast():
                    loss, info = objective(wrapped, x, y, **config.objective_params)
                if not torch.isfinite(loss):
                    raise ConfigError(f"training diverged at epoch {epoch + 1} (loss {loss.item()}); lower the lr")
                ex.optimizer_step(loss * ex.loss_weight(counted, len(idx)), optimizer, scaler)
                if constraint is not None:
                    constraint()
                if scheduler is not None:
                    scheduler.step()
                sums += torch.tensor([loss.item() * counted, counted], dtype=torch.float64)
                for key, value in info.items():
                    info_sums[key] = info_sums.get(key, 0.0) + value * counted
                task.update(loss=loss.item())
        _set_noise_scale(model, 0.0, 0.0)
        totals = ex.all_sum([float(sums[0]), float(sums[1]), *info_sums.values()])
        record: dict = {"epoch": epoch + 1, "loss": totals[0] / totals[1]}
        record.update({k: v / totals[1] for k, v in zip(info_sums, totals[2:])})
        if ex.is_main:
            model.eval()
            with noise_mode(model, "on"):
                record["test_acc"] = accuracy(model, test_set.images, test_set.labels, "single")
            for callback in callbacks:
                record.update(callback(model, epoch + 1, record) or {})
        elapsed += time.perf_counter() - t0
        record["elapsed_s"] = elapsed
        record = ex.broadcast(record)  # the same record, and the same stop decision, everywhere
        history.append(record)
        writer.say("  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in record.items()))
        writer.save_checkpoint({
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "scaler": scaler.state_dict() if scaler is not None else None,
            "history": history, "epoch": epoch + 1, "elapsed": elapsed, "world_size": ex.world_size,
            "callbacks": [_callback_state(c) for c in callbacks],
        })
        if record.get("stop_training"):  # a callback (e.g. a catastrophic-overfitting guard) ends training
            writer.say(f"stopped after epoch {epoch + 1} at a callback's request")
            break

    if ex.is_main:
        model.eval()
        seed_noise(model, derive_seed(config.seed, config.epochs, 0))
        deployed = InferenceRule(config.eval_rule, config.eval_draws)  # single draws once, whatever eval_draws
        test_accuracy = evaluate_classifier(model, test_set.images, test_set.labels, deployed.rule, deployed.n_draws)
        result = TrainingResult(
            dataset=config.dataset, model=config.model, noise=config.noise, n_train=len(train_set),
            n_test=len(test_set), test_accuracy=test_accuracy, history=history, train_time_s=elapsed,
            inference_rule={"rule": deployed.rule, "n_draws": deployed.n_draws}, execution=ex.describe(),
        )
        writer.run.save_model(model, spec)
        result.save(writer.run)
        writer.say("test accuracy: " + ", ".join(f"{k} {v:.4f}" for k, v in test_accuracy.items()))
    return writer.commit()
