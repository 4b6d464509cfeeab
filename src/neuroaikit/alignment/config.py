"""Settings of ``neuroaikit align`` (:func:`~neuroaikit.alignment.align_run`): one validated
dataclass, the only place their defaults live."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..config import BOOL, NON_NEGATIVE_INT, POSITIVE_INT, Config, InstanceOf, Interval, Options, Satisfies
from ..execution import ExecutionConfig, require_float32
from .bootstrap import BOOTSTRAP_METHODS
from .cka import CKA_KERNELS
from .predictivity import CONVENTIONS, MAPPINGS
from .rdm import RDM_METHODS

NOISE_MODES = ("off", "draw")


def _layer_names(value: Any) -> bool:
    return (isinstance(value, (list, tuple)) and len(value) > 0
            and all(isinstance(v, str) and v.strip() for v in value))


def _input_shape(value: Any) -> bool:
    return (isinstance(value, (list, tuple)) and len(value) in (2, 3)
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value))


@dataclass
class AlignmentConfig(Config):
    """How a model is compared with neural data, layer by layer.

    Args:
        region (int | None): Antolik imaging region 1, 2 or 3 (``None``: 1); other data
            files have no regions.
        layers (list of str | None): layer names (``None``: every leaf layer but
            flatten / dropout / identity / noise layers).
        noise (str | int): model noise while reading features: ``"off"``, ``"draw"`` (one
            draw) or N (mean of N draws). Default ``"off"``.
        rdm_method (str): RDM distance: correlation (1 - Pearson r), euclidean, sqeuclidean
            or cosine. Default ``"correlation"``.
        compare (str): RDM comparison: spearman, pearson, cosine or kendall_tau_a.
        cka_kernel (str): ``"linear"`` or ``"rbf"``.
        cka_debiased (bool): the debiased HSIC (Song et al. 2012). Default ``True``.
        mapping (str): predictivity mapping, ``"ridge"`` or ``"pls"``.
        n_folds (int): cross-validation folds over stimuli (>= 2). Default 10.
        convention (str): how predictivity is ceiled: ``"r/sqrt(reliability)"`` or
            ``"r2/reliability"``.
        n_boot (int): bootstrap resamples over stimuli. Default 1000.
        n_splits (int): random split halves of the repeats for the ceilings. Default 20.
        level (float): confidence level of the bootstrap intervals, in (0, 1). Default 0.95.
        seed (int): seeds folds, splits, resamples and noise draws. Default 0.
        input_shape (list[int] | None): the model's input ``[channels, size]`` (square) or
            ``[channels, height, width]`` (``None``: from the run's model and dataset).
        nan_policy (str): trials whose responses hold NaN/inf (a dropped frame, withheld
            responses): ``"raise"`` (default) stops with the option named, ``"drop"`` leaves them out.
        execution (ExecutionConfig): device and threads (``threads=None``: one thread up to
            1000 stimuli, where small matrices are faster without a thread pool).
    """

    region: int | None = None
    layers: list[str] | None = None
    noise: str | int = "off"
    rdm_method: str = "correlation"
    compare: str = "spearman"
    cka_kernel: str = "linear"
    cka_debiased: bool = True
    mapping: str = "ridge"
    n_folds: int = 10
    convention: str = "r/sqrt(reliability)"
    n_boot: int = 1000
    n_splits: int = 20
    level: float = 0.95
    seed: int = 0
    input_shape: list[int] | None = None
    nan_policy: str = "raise"
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)

    _parameter_constraints: ClassVar[dict] = {
        "region": [Interval(int, 1, 3), None],
        "layers": [Satisfies(_layer_names, "a non-empty list of layer names"), None],
        "noise": [Options(NOISE_MODES), POSITIVE_INT],
        "rdm_method": [Options(RDM_METHODS)],
        "compare": [Options(BOOTSTRAP_METHODS)],
        "cka_kernel": [Options(CKA_KERNELS)],
        "cka_debiased": [BOOL],
        "mapping": [Options(MAPPINGS)],
        "n_folds": [Interval(int, 2, None)],
        "convention": [Options(CONVENTIONS)],
        "n_boot": [POSITIVE_INT],
        "n_splits": [POSITIVE_INT],
        "level": [Interval(float, 0, 1, closed="neither")],
        "seed": [NON_NEGATIVE_INT],
        "input_shape": [Satisfies(_input_shape, "[channels, size] or [channels, height, width], integers >= 1"), None],
        "nan_policy": [Options(("raise", "drop"))],
        "execution": [InstanceOf(ExecutionConfig)],
    }

    def _check(self) -> None:
        require_float32(self.execution, "alignment", "features are read in float32")
        if self.layers is not None:
            self.layers = [str(name).strip() for name in self.layers]
        if self.input_shape is not None:
            self.input_shape = [int(v) for v in self.input_shape]
