"""Typed result of ``neuroaikit energy`` (``results/energy.json``); the report and the command
line read these objects, not raw JSON keys.

Attribute names of the measurement are NeuroBench's metric names (``Footprint``,
``SynapticOperations.Effective_MACs`` ...), kept verbatim so that figures can be matched with
NeuroBench's own output; the layout on disk is the one earlier versions wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from ..results import Result


@dataclass
class SynapticOperationCounts(Result):
    """Synaptic operations per sample (NeuroBench's keys; ``Dense_MACs`` / ``Dense_ACs`` split
    ``Dense`` by the operation type of each call and are not NeuroBench keys)."""

    Effective_MACs: float
    Effective_ACs: float
    Dense: float
    Dense_MACs: float | None = None
    Dense_ACs: float | None = None


@dataclass
class EnergyEstimate(Result):
    """Compute-only energy per sample, in joules, from a per-operation table."""

    precision: str
    mac_pj: float
    ac_pj: float
    effective_joules_per_sample: float
    dense_joules_per_sample: float

    @property
    def effective_uj(self) -> float:
        return self.effective_joules_per_sample * 1e6

    @property
    def dense_uj(self) -> float:
        return self.dense_joules_per_sample * 1e6


@dataclass
class EnergyMeasurement(Result):
    """NeuroBench metrics of one model on ``n_samples`` test images (:func:`~neuroaikit.energy.measure`),
    plus accuracy, the energy estimate and its assumptions."""

    Footprint: int
    ConnectionSparsity: float
    ActivationSparsity: float | None
    SynapticOperations: SynapticOperationCounts
    MembraneUpdates: float
    n_samples: int
    ParameterCount: int | None = None
    accuracy: float | None = None
    energy: EnergyEstimate | None = None
    assumptions: list[str] = field(default_factory=list)
    input_sparsity: float | None = None
    measure_time_s: float | None = None
    run: str | None = None
    model: str | None = None
    dataset: str | None = None
    model_kwargs: dict = field(default_factory=dict)
    uncounted_weights: list[str] = field(default_factory=list)


@dataclass
class EnergyComparisonRow(Result):
    """One run of the set measured together: the figures the comparison table and plot show."""

    run: str
    model: str | None
    accuracy: float | None
    Footprint: int
    ActivationSparsity: float | None
    Effective_MACs: float
    Effective_ACs: float
    Dense: float
    MembraneUpdates: float
    effective_uJ: float | None
    dense_uJ: float | None
    T: int | None = None
    #: the run folder's absolute path when measured (``None`` in a file written before it was kept)
    path: str | None = None

    @classmethod
    def of(cls, measurement: EnergyMeasurement, path: str | None = None) -> "EnergyComparisonRow":
        ops, energy = measurement.SynapticOperations, measurement.energy
        return cls(run=measurement.run or "", model=measurement.model, T=measurement.model_kwargs.get("T"), path=path,
                   accuracy=measurement.accuracy, Footprint=measurement.Footprint,
                   ActivationSparsity=measurement.ActivationSparsity, Effective_MACs=ops.Effective_MACs,
                   Effective_ACs=ops.Effective_ACs, Dense=ops.Dense, MembraneUpdates=measurement.MembraneUpdates,
                   effective_uJ=energy.effective_uj if energy else None, dense_uJ=energy.dense_uj if energy else None)


@dataclass
class EnergyResult(Result):
    """``results/energy.json``: this run's measurement (``this``) and the rows of every run
    measured with it on the same images (``comparison``)."""

    result_name: ClassVar[str] = "energy"

    dataset: str
    precision: str
    n_samples: int
    this: EnergyMeasurement
    comparison: list[EnergyComparisonRow] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)
    execution: dict = field(default_factory=dict)
    #: the seed of the noise draws (``None`` in a file written before energy was seeded)
    seed: int | None = None
    #: shared by the results of the runs measured together, so a report can tell a compared run
    #: measured again, retrained or removed since (``None`` in a file written before it was kept)
    measurement_id: str | None = None
    #: this run folder's absolute path when measured, against which the rows' paths are read once
    #: the folders have moved together (``None`` in a file written before it was kept)
    path: str | None = None
