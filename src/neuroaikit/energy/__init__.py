"""Energy accounting with NeuroBench's metric definitions and names (Yik et al. 2025).

Static metrics take the model: :class:`Footprint`, :class:`ParameterCount`,
:class:`ConnectionSparsity`. Workload metrics run with forward hooks while the model sees
data: :class:`ActivationSparsity`, :class:`SynapticOperations` (``Effective_MACs``,
``Effective_ACs``, ``Dense``), :class:`MembraneUpdates`. :func:`measure` runs them all and
adds a compute-only energy estimate from a per-operation table (Horowitz 2014, 45 nm presets
``fp32``, ``fp16``, ``int8``), always with its assumptions. Works on ANNs and SNNs.
:func:`energy_for_runs` (``neuroaikit energy``) measures run folders together: settings in an
:class:`EnergyConfig`, the stored result an :class:`EnergyResult` in ``results/energy.json``.
"""

from .activation_sparsity import ActivationSparsity
from .base import StaticMetric, WorkloadMetric
from .config import EnergyConfig
from .connection_sparsity import ConnectionSparsity
from .footprint import Footprint
from .measure import STATIC_METRICS, WORKLOAD_METRICS, format_energy, measure
from .membrane_updates import MembraneUpdates
from .parameter_count import ParameterCount
from .results import EnergyComparisonRow, EnergyEstimate, EnergyMeasurement, EnergyResult, SynapticOperationCounts
from .runs import energy_for_runs
from .synaptic_operations import SynapticOperations, layer_operations
from .table import PRESETS, assumptions, estimate_energy, operation_energy

__all__ = [
    "Footprint", "ParameterCount", "ConnectionSparsity", "ActivationSparsity", "SynapticOperations",
    "MembraneUpdates", "StaticMetric", "WorkloadMetric", "measure", "format_energy", "energy_for_runs",
    "PRESETS", "assumptions", "estimate_energy", "operation_energy", "layer_operations",
    "STATIC_METRICS", "WORKLOAD_METRICS", "EnergyConfig", "EnergyResult", "EnergyMeasurement", "EnergyComparisonRow",
    "EnergyEstimate", "SynapticOperationCounts",
]
