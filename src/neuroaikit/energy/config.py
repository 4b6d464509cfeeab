"""Settings of ``neuroaikit energy`` (:func:`~neuroaikit.energy.energy_for_runs`): one
validated dataclass, the only place their defaults live."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from ..config import NON_NEGATIVE_INT, PATH, POSITIVE_INT, Config, InstanceOf, Options
from ..execution import ExecutionConfig, require_float32
from .table import PRESETS


@dataclass
class EnergyConfig(Config):
    """How the runs are measured.

    Args:
        data_dir (str | None): the folder holding the dataset files (``None``: the one the
            first run was trained with, else the default data folder).
        subset (int | None): measure on the first N test images (``None``: all). Default 1000.
        energy_precision (str): the energy-per-operation table, ``"fp32"``, ``"fp16"`` or
            ``"int8"`` (Horowitz 2014, 45 nm). This is the arithmetic the *estimate* assumes,
            not the precision the model computes in (that is ``execution.precision``; the
            measurement always runs in float32). Default ``"fp32"``.
        batch_size (int): images per forward pass. Default 100.
        seed (int): seeds the noise draws of a noisy model (each run is measured from this seed,
            so figures do not depend on which runs are measured together). Default 0.
        execution (ExecutionConfig): device and threads.
    """

    data_dir: str | None = None
    subset: int | None = 1000
    energy_precision: str = "fp32"
    batch_size: int = 100
    seed: int = 0
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)

    _parameter_constraints: ClassVar[dict] = {
        "data_dir": [PATH, None],
        "subset": [POSITIVE_INT, None],
        "energy_precision": [Options(tuple(PRESETS))],
        "batch_size": [POSITIVE_INT],
        "seed": [NON_NEGATIVE_INT],
        "execution": [InstanceOf(ExecutionConfig)],
    }

    def _check(self) -> None:
        if self.data_dir is not None:
            self.data_dir = str(self.data_dir)
        require_float32(self.execution, "energy", "the measurement runs in float32; energy_precision picks the "
                        "energy-per-operation table")
