"""The training loop: run folders, resumable checkpoints, seeded everything."""

from __future__ import annotations

import shutil
import sys
import time
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..models import build_from_spec, model_spec
from ..noise import accuracy, noise_layers, noise_mode, seed_noise
from ..runs import Run, check_replaceable, commit_run, partial_dir
from .augment import augment_batch
from .config import TrainConfig
from .objectives import get_objective

CHECKPOINT = "checkpoint.pt"
# called at the end of each epoch; may return extra figures for that epoch's record, and
# {"stop_training": 1} to end training after that epoch's checkpoint
EpochCallback = Callable[[nn.Module, int, dict], "dict | None"]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but no CUDA device is available")
    return torch.device(name)


def build_model_for(config: TrainConfig, dataset) -> tuple[nn.Module, dict]:
    """The configured model sized for ``dataset``, and the spec that rebuilds it."""
    channels, size, _ = dataset.images.shape[1:]
    kwargs = {"in_channels": channels, "image_size": size, "n_classes": len(dataset.classes)}
    kwargs.update(config.model_kwargs)
    spec = model_spec(config.model, kwargs, config.noise)
    return build_from_spec(spec), spec


def _optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
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


def _load_data(config: TrainConfig):
    from ..data import load_dataset

    train_set = load_dataset(config.dataset, "train", data_dir=config.data_dir)
    test_set = load_dataset(config.dataset, "test", data_dir=config.data_dir)
    if config.train_subset:
        train_set = train_set.subset(config.train_subset)
    if config.test_subset:
        test_set = test_set.subset(config.test_subset)
    return train_set, test_set


def train(
    config: TrainConfig,
    callbacks: Sequence[EpochCallback] = (),
    progress: bool | None = None,
    echo: Callable[[str], None] | None = print,
) -> Run:
    """Train the configured model and write its run folder; returns the finished :class:`Run`.

    The job writes into ``<out>.partial`` and saves a checkpoint after every epoch; the
    folder is renamed to ``out`` only when training and the final evaluation have finished.
    With ``config.resume`` an interrupted job continues from its last checkpoint.
    """
    final_dir = config.out
    check_replaceable(final_dir)  # before hours of training, not after
    work = Run(partial_dir(final_dir))
    checkpoint_path = work.path / CHECKPOINT
    discarded = checkpoint_path.is_file() and not config.resume
    if work.path.exists() and not (config.resume and checkpoint_path.is_file()):
        shutil.rmtree(work.path)
    work.path.mkdir(parents=True, exist_ok=True)

    def say(message: str) -> None:
        work.log(message)
        if echo:
            echo(message)

    if discarded:
        say(f"started afresh: discarded the interrupted job's checkpoint in {work.path} (--resume continues it)")

    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    train_set, test_set = _load_data(config)
    model, spec = build_model_for(config, train_set)
    model.to(device)
    seed_noise(model, config.seed)
    objective = get_objective(config.objective)
    optimizer = _optimizer(config, model)
    steps_per_epoch = -(-len(train_set) // config.batch_size)
    scheduler = _scheduler(config, optimizer, steps_per_epoch)
    generator = torch.Generator().manual_seed(config.seed)
    history: list[dict] = []
    start_epoch, elapsed = 0, 0.0

    if config.resume and checkpoint_path.is_file():
        state = torch.load(checkpoint_path, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state.get("scheduler"):
            scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        for name, layer in noise_layers(model):
            layer.set_rng_state(state["noise_rng"].get(name))
        history, start_epoch, elapsed = state["history"], state["epoch"], state["elapsed"]
        say(f"resumed from {checkpoint_path} after epoch {start_epoch}")

    work.save_config(config.to_dict())
    say(f"training {config.model} on {config.dataset}: {len(train_set)} train / {len(test_set)} test images, "
        f"noise {config.noise or 'none'}, objective {config.objective}, device {device}")
    show_progress = sys.stderr.isatty() if progress is None else progress

    for epoch in range(start_epoch, config.epochs):
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(len(train_set), generator=generator)
        totals = {"loss": 0.0}
        batches = range(0, len(train_set), config.batch_size)
        if show_progress:
            from tqdm import tqdm

            batches = tqdm(batches, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False)
        for step, start in enumerate(batches):
            _set_noise_scale(model, config.noise_warmup, epoch + step / steps_per_epoch)
            idx = order[start : start + config.batch_size]
            x = augment_batch(train_set.images[idx], config.augment, generator).to(device)
            y = train_set.labels[idx].to(device)
            loss, info = objective(model, x, y, **config.objective_params)
            if not torch.isfinite(loss):
                raise ConfigError(f"training diverged at epoch {epoch + 1} (loss {loss.item()}); lower the lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            totals["loss"] += loss.item() * len(idx)
            for key, value in info.items():
                totals[key] = totals.get(key, 0.0) + value * len(idx)
        _set_noise_scale(model, 0.0, 0.0)
        model.eval()
        record = {"epoch": epoch + 1, **{k: v / len(train_set) for k, v in totals.items()}}
        with noise_mode(model, "on"):
            record["test_acc"] = accuracy(model, test_set.images, test_set.labels, "single")
        for callback in callbacks:
            record.update(callback(model, epoch + 1, record) or {})
        elapsed += time.perf_counter() - t0
        record["elapsed_s"] = elapsed
        history.append(record)
        say("  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in record.items()))
        torch.save(
            {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "generator": generator.get_state(), "torch_rng": torch.get_rng_state(),
                "noise_rng": {n: l.rng_state() for n, l in noise_layers(model) if l.rng_state() is not None},
                "history": history, "epoch": epoch + 1, "elapsed": elapsed,
            },
            checkpoint_path,
        )
        if record.get("stop_training"):  # a callback (e.g. a catastrophic-overfitting guard) ends training
            say(f"stopped after epoch {epoch + 1} at a callback's request")
            break

    model.eval()
    test_accuracy = evaluate_classifier(model, test_set.images, test_set.labels, config.eval_rule, config.eval_draws)
    metrics = {
        "dataset": config.dataset, "model": config.model, "noise": config.noise,
        "n_train": len(train_set), "n_test": len(test_set),
        "test_accuracy": test_accuracy, "history": history, "train_time_s": elapsed,
        "inference_rule": {"rule": config.eval_rule, "n_draws": config.eval_draws},
    }
    work.save_model(model, spec)
    work.save_metrics(metrics)
    say("test accuracy: " + ", ".join(f"{k} {v:.4f}" for k, v in test_accuracy.items()))
    checkpoint_path.unlink(missing_ok=True)
    return Run(commit_run(work.path, final_dir))
