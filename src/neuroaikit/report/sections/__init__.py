"""Report section builders, one module per capability (see ``neuroaikit.report.build``),
and the phrases they share."""

from __future__ import annotations

from typing import Any, Mapping


def device_and_precision(device: Any, precision: Any) -> str:
    """``"cpu, bf16-mixed"``: where and in what precision something was computed (``"32"`` reads
    ``float32``); either part may be missing (``None``), both give ``""``."""
    parts = [str(device) if device else "", "float32" if str(precision) == "32" else str(precision or "")]
    return ", ".join(p for p in parts if p)


def computed_on(execution: Mapping[str, Any] | None, what: str = "Computed") -> str:
    """The sentence that ends a section's opening paragraph, from a stored ``execution`` record
    (``" Computed on cpu, bf16-mixed."``), so every report says what a result's figures were
    computed in; ``""`` for a record that names neither (a result written before it was kept)."""
    execution = execution if isinstance(execution, Mapping) else {}
    where = device_and_precision(execution.get("device"), execution.get("precision"))
    if not where:
        return ""
    return f" {what} {'on' if execution.get('device') else 'in'} {where}."
