"""Run folders: everything one job produced, in a layout any later command can read.

A run folder holds::

    config.json          the fully resolved configuration of the job
    model.json           how to rebuild the model (builder name, its arguments, noise specs)
    weights.safetensors  the model's tensors (no pickled code)
    metrics.json         the job's figures
    log.txt              what was printed while it ran
    results/<name>.json  results later commands add (evaluate, align, energy, twin ...)
    report.html          the self-contained report, when built

A job writes into ``<run>.partial/`` and renames it to ``<run>`` only when it has
finished, so a crashed or interrupted job never replaces a good run; ``.partial``
also holds the checkpoint a resumed job continues from.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from .errors import ConfigError, DataError
from .io import read_json, write_json, atomic_write

WEIGHTS = "weights.safetensors"
# files that mark a folder as one this toolkit wrote (run folders; Sensorium FileTrees have config.json)
_RUN_MARKERS = ("model.json", "metrics.json", "config.json")


def partial_dir(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".partial")


def check_replaceable(path: str | os.PathLike) -> None:
    """Refuse an output path that holds something other than an earlier run (a file, a data
    folder ...): replacing it would destroy the user's files."""
    path = Path(path)
    if not path.exists():
        return
    if path.is_dir() and (not any(path.iterdir()) or any((path / m).is_file() for m in _RUN_MARKERS)):
        return
    raise ConfigError(f"{path} exists and is not a run folder; refusing to replace it (choose another output path)")


def commit_run(work_dir: Path, final_dir: Path) -> Path:
    """Move a finished ``work_dir`` onto ``final_dir``; an older run there is replaced
    only after the new one is complete, and nothing but an older run is ever replaced."""
    final_dir = Path(final_dir)
    check_replaceable(final_dir)
    old = None
    if final_dir.exists():
        old = final_dir.with_name(f"{final_dir.name}.old-{os.getpid()}-{int(time.time())}")
        os.replace(final_dir, old)
    os.replace(work_dir, final_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return final_dir


class Run:
    """A run folder on disk (finished, or ``.partial`` while a job writes it)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    # -- reading ---------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike) -> "Run":
        path = Path(path)
        if not path.is_dir():
            raise DataError(f"run folder {path} does not exist")
        if not (path / "model.json").is_file() and not (path / "metrics.json").is_file():
            raise DataError(f"{path} is not a run folder (no model.json or metrics.json)")
        return cls(path)

    def _read(self, name: str, default: Any = None) -> Any:
        file = self.path / name
        if not file.is_file():
            return default
        try:
            return read_json(file)
        except ValueError as exc:
            raise DataError(f"{file} is not valid JSON: {exc}") from None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config(self) -> dict:
        return self._read("config.json", {})

    @property
    def metrics(self) -> dict:
        return self._read("metrics.json", {})

    @property
    def model_spec(self) -> dict:
        spec = self._read("model.json")
        if spec is None:
            raise DataError(f"{self.path / 'model.json'} is missing: this run has no model")
        return spec

    def result(self, name: str, default: Any = None) -> Any:
        return self._read(f"results/{name}.json", default)

    def result_names(self) -> list[str]:
        folder = self.path / "results"
        return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []

    def load_model(self, map_location: str | torch.device = "cpu") -> torch.nn.Module:
        from .models import build_from_spec
        from safetensors.torch import load_file

        model = build_from_spec(self.model_spec)
        weights = self.path / WEIGHTS
        if not weights.is_file():
            raise DataError(f"{weights} is missing")
        try:
            state = load_file(str(weights), device=str(map_location))
        except Exception as exc:  # safetensors raises its own error types
            raise DataError(f"{weights} cannot be read: {exc}") from None
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.endswith("frozen_eps")]
        if missing or unexpected:
            raise DataError(
                f"{weights} does not match model.json: missing {missing[:5]}, unexpected {unexpected[:5]}"
            )
        model.eval()
        return model

    # -- writing ---------------------------------------------------------
    def save_model(self, model: torch.nn.Module, spec: dict) -> None:
        from safetensors.torch import save_file

        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        atomic_write(self.path / WEIGHTS, lambda p: save_file(state, str(p)))
        write_json(self.path / "model.json", spec)

    def save_config(self, config: dict) -> None:
        write_json(self.path / "config.json", config)

    def save_metrics(self, metrics: dict) -> None:
        write_json(self.path / "metrics.json", metrics)

    def save_result(self, name: str, obj: Any) -> Path:
        return write_json(self.path / "results" / f"{name}.json", obj)

    def log(self, message: str) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / "log.txt", "a", encoding="utf-8") as fh:
            fh.write(message.rstrip("\n") + "\n")


def load_run(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild the model a run folder holds, weights loaded, in eval mode.

    Nothing in the folder is executed: the model is rebuilt from its JSON spec and
    the tensors are read from safetensors.
    """
    return Run.open(path).load_model(map_location)
