"""Energy per operation (Horowitz, ISSCC 2014, 45 nm, 0.9 V) and the compute-only estimate."""

from __future__ import annotations

from typing import NamedTuple

from ..errors import ConfigError


class OperationEnergy(NamedTuple):
    """Energy of one multiply-accumulate and one accumulate, in picojoules."""

    mac_pj: float
    ac_pj: float
    source: str


PRESETS: dict[str, OperationEnergy] = {
    # MAC = multiply + add; AC = add (Horowitz 2014, Fig. 1.1.9, 45 nm 0.9 V)
    "fp32": OperationEnergy(4.6, 0.9, "Horowitz 2014, 45 nm: fp32 mult 3.7 pJ + add 0.9 pJ"),
    "fp16": OperationEnergy(1.5, 0.4, "Horowitz 2014, 45 nm: fp16 mult 1.1 pJ + add 0.4 pJ"),
    "int8": OperationEnergy(0.23, 0.03, "Horowitz 2014, 45 nm: int8 mult 0.2 pJ + add 0.03 pJ"),
}


def operation_energy(precision: str) -> OperationEnergy:
    """The energy per MAC and per AC of the preset ``precision`` (``fp32``, ``fp16`` or ``int8``)."""
    if precision not in PRESETS:
        raise ConfigError(f"unknown precision preset {precision!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[precision]


def assumptions(precision: str) -> list[str]:
    """The statements every energy figure must be printed with."""
    op = operation_energy(precision)
    return [
        f"estimator: compute only, synaptic operations x energy per operation ({op.source}); "
        f"E_MAC = {op.mac_pj} pJ, E_AC = {op.ac_pj} pJ",
        "inference only (no backward pass), per sample; memory access, data movement, neuron "
        "(membrane) updates, pooling, normalisation and biases are NOT included: memory usually dominates",
        "effective = zero inputs and zero weights skipped (event-driven / sparse hardware); "
        "dense = every input and weight (hardware that cannot skip zeros)",
        "ACs: calls whose inputs are all in {-1, 0, 1} (spikes or binary input); MACs otherwise "
        "(e.g. the first layer of a direct-coded SNN)",
        "estimators (compute-only, with memory, accelerator models) are not comparable with each other",
    ]


def estimate_energy(synops: dict, precision: str = "fp32") -> dict:
    """Energies in joules per sample from :class:`SynapticOperations` results."""
    op = operation_energy(precision)
    effective = (synops["Effective_MACs"] * op.mac_pj + synops["Effective_ACs"] * op.ac_pj) * 1e-12
    dense_macs = synops.get("Dense_MACs", synops["Dense"] - synops.get("Dense_ACs", 0.0))
    dense = (dense_macs * op.mac_pj + synops.get("Dense_ACs", 0.0) * op.ac_pj) * 1e-12
    return {"precision": precision, "mac_pj": op.mac_pj, "ac_pj": op.ac_pj,
            "effective_joules_per_sample": effective, "dense_joules_per_sample": dense}
