"""Run every NeuroBench metric on a model and a set of images, and estimate energy."""

from __future__ import annotations

import time
from typing import Sequence

import torch
from torch import nn

from ..errors import ConfigError
from ..execution import model_device
from ..progress import Progress, silent
from .activation_sparsity import ActivationSparsity
from .base import StaticMetric, WorkloadMetric
from .connection_sparsity import ConnectionSparsity
from .footprint import Footprint
from .membrane_updates import MembraneUpdates
from .parameter_count import ParameterCount
from .synaptic_operations import SynapticOperations
from .table import assumptions, estimate_energy, operation_energy

STATIC_METRICS = (Footprint, ParameterCount, ConnectionSparsity)
WORKLOAD_METRICS = (ActivationSparsity, SynapticOperations, MembraneUpdates)
#: a measurement with at least this many batches shows its own progress task
LONG_MEASUREMENT_BATCHES = 10


@torch.no_grad()
def measure(model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None, batch_size: int = 100,
            precision: str = "fp32",
            metrics: Sequence[type[StaticMetric] | type[WorkloadMetric]] = STATIC_METRICS + WORKLOAD_METRICS,
            progress: Progress | None = None) -> dict:
    """NeuroBench metrics of ``model`` on ``images`` ``(N, ...)``, plus accuracy and energy.

    The batches run on the device the model is on (images and labels may stay on the CPU);
    ``precision`` is the energy-per-operation preset (fp32, fp16, int8), not the arithmetic the
    model computes in. ``progress`` (default: silent) shows a task over the batches when there
    are many. A model with weights that no counted layer owns (products the hooks cannot see)
    draws a ``UserWarning`` naming them (:class:`SynapticOperations`).

    Returns a dict keyed by metric name (``Footprint``, ``ConnectionSparsity``,
    ``ActivationSparsity``, ``SynapticOperations`` {``Effective_MACs``, ``Effective_ACs``,
    ``Dense``}, ``MembraneUpdates``, ...), ``accuracy`` when labels are given, ``energy``
    (joules per sample), ``assumptions`` (print them with any energy figure) and
    ``uncounted_weights`` (the weights whose products no hook counted; empty when all were);
    :class:`~neuroaikit.energy.EnergyMeasurement` ``.from_dict`` types it.
    """
    if images.dim() < 2 or len(images) == 0:
        raise ConfigError(f"measure needs a non-empty batch of inputs (N, ...), got shape {tuple(images.shape)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if labels is not None and len(labels) != len(images):
        raise ConfigError(f"measure got {len(images)} inputs but {len(labels)} labels")
    operation_energy(precision)  # an unknown preset fails before the measurement, not after
    model.eval()
    device = model_device(model)
    result: dict = {}
    for cls in metrics:
        if not issubclass(cls, WorkloadMetric):
            result[cls.name] = cls()(model)
    workload = [cls().attach(model) for cls in metrics if issubclass(cls, WorkloadMetric)]
    n_batches = -(-len(images) // batch_size)
    shown = progress if progress is not None and n_batches >= LONG_MEASUREMENT_BATCHES else silent()
    correct = 0
    t0 = time.perf_counter()
    try:
        with shown.task("measure", total=n_batches, unit="batches") as task:
            for start in range(0, len(images), batch_size):
                x = images[start:start + batch_size].to(device)
                for m in workload:
                    m.begin_batch()
                out = model(x)
                for m in workload:
                    m.end_batch(len(x))
                if labels is not None:
                    predicted = out.argmax(-1).cpu()
                    correct += int((predicted == labels[start:start + batch_size].cpu()).sum())
                task.update(1)
    finally:
        for m in workload:
            m.detach()
    for m in workload:
        result[m.name] = m.compute()
        if isinstance(m, SynapticOperations):
            result["uncounted_weights"] = list(m.uncounted_weights_)
    result["n_samples"] = len(images)
    result["measure_time_s"] = time.perf_counter() - t0
    if labels is not None:
        result["accuracy"] = correct / len(images)
    if "SynapticOperations" in result:
        result["energy"] = estimate_energy(result["SynapticOperations"], precision)
        result["assumptions"] = assumptions(precision)
    x = images[: min(len(images), 1000)]
    result["input_sparsity"] = float((x == 0).float().mean())
    return result


def format_energy(result) -> str:
    """A multi-line text summary with the assumptions, of a :func:`measure` dict or an
    :class:`~neuroaikit.energy.EnergyMeasurement`."""
    if hasattr(result, "to_dict"):
        result = result.to_dict()
    ops = result.get("SynapticOperations") or {}
    e = result.get("energy") or {}
    activation = result.get("ActivationSparsity")
    lines = [
        f"Footprint {result.get('Footprint')} B, ConnectionSparsity {result.get('ConnectionSparsity')}, "
        f"ActivationSparsity {'not counted' if activation is None else format(activation, '.4f')}, "
        f"MembraneUpdates {result.get('MembraneUpdates') or 0:.4g}",
        f"SynapticOperations per sample: Effective_MACs {ops.get('Effective_MACs', 0):.4g}, "
        f"Effective_ACs {ops.get('Effective_ACs', 0):.4g}, Dense {ops.get('Dense', 0):.4g}",
    ]
    if e:
        lines.append(f"energy per sample ({e['precision']}): effective {e['effective_joules_per_sample'] * 1e6:.4g} uJ, "
                     f"dense {e['dense_joules_per_sample'] * 1e6:.4g} uJ")
    if result.get("accuracy") is not None:
        lines.append(f"accuracy {result['accuracy']:.4f} on {result['n_samples']} samples")
    missed = result.get("uncounted_weights") or []
    if missed:
        lines.append(f"NOT counted: the products of weights {', '.join(missed)} (no Linear/Conv layer or "
                     "product-reporting module owns them): the operations and energy are too low")
    lines += ["assumptions:"] + [f"  - {a}" for a in result.get("assumptions") or []]
    return "\n".join(lines)
