"""What every certifier shares: Monte-Carlo class counts in batched passes, Cohen et al.'s
CERTIFY (selection draws, estimation draws, a Clopper-Pearson lower bound, abstention) and
PREDICT (a binomial test between the top two classes).

A certifier defines ``draw(x, k) -> logits (k, B, K)`` (``k`` random draws of the randomized
classifier for each image of ``x``) and ``radius(p_lower)``; the rest is here.
"""

from __future__ import annotations

import contextlib
import logging
import numbers
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from scipy import stats
from torch import nn

from ..cpu_fusion import fuse_conv_relu
from ..cpu_pooling import cpu_pooling_kernels
from ..errors import ConfigError
from ..execution import model_device
from .bounds import check_alpha, clopper_pearson_lower

if TYPE_CHECKING:
    from ..attacks.randomness import RandomnessCheck

log = logging.getLogger(__name__)

ABSTAIN = -1
#: the precisions a certifier evaluates its model in
PRECISIONS = ("32", "bf16-mixed")


def check_sample_sizes(n0: int, n: int) -> None:
    for name, value in (("n0", n0), ("n", n)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
    if n0 > n:
        raise ConfigError(f"n0 ({n0} selection draws) must not exceed n ({n} estimation draws)")


def check_batch_size(batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ConfigError(f"batch_size must be an integer >= 1, got {batch_size!r}")


class Certifier:
    """Base class: Monte-Carlo certification of a randomized classifier.

    Args:
        model (nn.Module): returns logits.
        max_rows (int | None): rows per forward pass (images x draws); draws for a batch of
            images are taken together up to this size. ``None`` (default): 256 on a CPU, where
            small passes keep the activations in cache and run faster than large ones
            (``benchmarks/certify.py``), 8192 on a GPU, where large passes pay off.
        channels_last (bool): store the model's 4-D (convolution) weights channels-last, which
            makes PyTorch run the convolutions and poolings in that layout (about 2x faster on a
            CPU for the toolkit's CNN, same values). This changes the memory layout of
            ``model``'s parameters in place. Default True.
        precision (str): ``"32"`` (default) or ``"bf16-mixed"``: the draws' forward passes under
            bfloat16 autocast, about 2x faster on CPUs with AVX512-BF16 or AMX and on GPUs. The
            classifier certified is then the network evaluated that way (its predictions come
            from the same passes); randomized smoothing's guarantee holds for any base
            classifier, the hidden method's sensitivity bound does not (it refuses bf16).
        compile (bool): run the draws' forward passes through ``torch.compile``, which fuses the
            passes over the activations that follow each convolution (bias, ReLU, pooling): the
            same network, computed in fewer passes (``benchmarks/certify.py --compile``: 1.38x on
            an H200, radii identical). Compiling costs seconds to a minute once per model, and
            on a CPU it needs a C++ compiler. Default False. Uncompiled draws on a CPU compute
            each ``Conv2d`` that a ``Sequential`` follows by a ``ReLU`` in one oneDNN call
            (:func:`neuroaikit.cpu_fusion.fuse_conv_relu`).

    A model with batch norm in training mode, or without running statistics
    (``track_running_stats=False``, which normalises with each batch's statistics in eval mode
    too), is refused: its outputs would depend on the batch, and in training mode certifying
    would overwrite its running statistics. Before the first draws the model is
    run to find its own randomness (:meth:`check_randomness`); randomness drawn once per forward
    pass and shared by the batch makes each pass take one draw per image, so that the draws of
    one image stay independent, as the Clopper-Pearson bound assumes.
    """

    name = "certifier"
    sigma: float  # the noise s.d. certified: each method sets it

    def __init__(self, model: nn.Module, max_rows: int | None = None, channels_last: bool = True,
                 precision: str = "32", compile: bool = False):
        if not isinstance(model, nn.Module):
            raise ConfigError(f"{type(self).__name__} needs an nn.Module, got {type(model).__name__}")
        from ..attacks.randomness import (  # not at import: attacks is large
            batch_statistics_modules, batch_statistics_warning, batchnorm_warning, in_training_mode)

        batch_statistics = batch_statistics_modules(model)
        if batch_statistics:  # a draw's class would depend on the other draws of its batch
            raise ConfigError(f"cannot certify with {batch_statistics_warning(batch_statistics)}")
        batchnorm = in_training_mode(model, nn.modules.batchnorm._BatchNorm)
        if batchnorm:
            raise ConfigError(f"cannot certify with {batchnorm_warning(batchnorm)}")
        if max_rows is not None and (isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1):
            raise ConfigError(f"max_rows must be an integer >= 1, got {max_rows!r}")
        if precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
        self.model = model
        self.precision = precision
        self.max_rows = max_rows if max_rows is not None else (256 if self.device.type == "cpu" else 8192)
        if not isinstance(compile, bool):
            raise ConfigError(f"compile must be True or False, got {compile!r}")
        if channels_last and any(p.dim() == 4 for p in model.parameters()):
            # Module.to documents and accepts memory_format, but torch's overloads do not declare it
            model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        #: what the draws call, the model compiled, or (uncompiled) its view with each convolution
        #: and the ReLU after it in one oneDNN call on a CPU (:mod:`neuroaikit.cpu_fusion`; the same
        #: parameters and noise hooks, the model itself left as it is)
        self.forward_model = torch.compile(model) if compile else fuse_conv_relu(model)
        self.compile = compile
        #: what running the model found (:meth:`check_randomness`), ``None`` before the first draws
        self.randomness: RandomnessCheck | None = None
        #: whether the model's own randomness is shared by the rows of a pass (then one draw per
        #: image per pass)
        self.shared_randomness = False

    # -- to define ------------------------------------------------------------
    def draw(self, x: torch.Tensor, k: int) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def radius(self, p_lower: float) -> float:  # pragma: no cover - abstract
        """The certified L2 radius of a class whose probability is at least ``p_lower`` (0: none)."""
        raise NotImplementedError

    # -- Monte Carlo ------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return model_device(self.model)

    def check_randomness(self, x: torch.Tensor) -> list[tuple[int, str]]:
        """Find the model's own randomness by running it on ``x``, once (later calls return ``[]``).

        :func:`~neuroaikit.attacks.detect_randomness` runs a copy of the model and marks it as the
        attacks do (:func:`~neuroaikit.noise.mark_stochastic`). Randomness drawn once per forward
        pass (a mark ``per_row=False``, found now or before) would make the draws of one pass alike
        and the Clopper-Pearson bound, which assumes independent draws, overconfident; every pass
        then takes one draw per image (:attr:`shared_randomness`). The random stream of the draws
        is the same as without the check.

        Returns what to tell the user, ``(logging level, line)`` each; :meth:`counts` logs it
        when nobody asked before the first draws.
        """
        if self.randomness is not None:
            return []
        from ..attacks.randomness import detect_randomness, dropout_warning, in_training_mode
        from ..noise.draws import shares_draws_across_batch

        x = x.to(self.device, torch.float32)
        with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
            self.randomness = detect_randomness(self.model, x)
        self.shared_randomness = shares_draws_across_batch(self.model)
        dropout = in_training_mode(self.model, nn.modules.dropout._DropoutNd)
        # dropout explains the randomness that disappears under eval(): one line for it, as evaluate says it
        lines = [(logging.WARNING, line) for line in ([dropout_warning(dropout)] if dropout else
                                                      self.randomness.warnings)]
        if self.shared_randomness:
            lines.append((logging.INFO, "the model's own randomness is drawn once per forward pass and shared by the "
                                        "batch: each image's draws come from separate passes, one draw per image each"))
        return lines

    def counts(self, x: torch.Tensor, n: int) -> torch.Tensor:
        """How often each class wins in ``n`` draws, per image: ``(B, K)`` int64. Draws for the
        whole batch go through the model together, ``max_rows // B`` per pass (a batch of more than
        ``max_rows`` images, ``max_rows`` of them at a time, one draw each; one per pass when
        the model's own randomness is shared by a pass, :meth:`check_randomness`). On a CPU, 2x2
        max poolings take the faster exact path of :mod:`neuroaikit.cpu_pooling` (a compiled
        model generates its own pooling code instead)."""
        x = x.to(self.device, torch.float32)
        for level, line in self.check_randomness(x):  # outside inference mode: it copies the model
            log.log(level, line)
        return self._counts(x, n)

    @torch.inference_mode()
    def _counts(self, x: torch.Tensor, n: int) -> torch.Tensor:
        if x.shape[0] > self.max_rows:  # more images than rows per pass: max_rows of them at a time, still a cap
            return torch.cat([self._counts(part, n) for part in x.split(self.max_rows)])
        per_pass = 1 if self.shared_randomness else max(1, self.max_rows // max(1, x.shape[0]))
        total = None
        done = 0
        pooling = cpu_pooling_kernels() if self.device.type == "cpu" and not self.compile else contextlib.nullcontext()
        with pooling:
            while done < n:
                k = min(per_pass, n - done)
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16-mixed"):
                    logits = self.draw(x, k)
                won = F.one_hot(logits.argmax(-1), logits.shape[-1]).sum(0)
                total = won if total is None else total + won
                done += k
        assert total is not None
        return total.cpu()

    # -- Cohen et al. 2019 ----------------------------------------------------
    def certify(self, x: torch.Tensor, n0: int = 100, n: int = 10000, alpha: float = 0.001,
                batch_size: int = 100, per_image: bool = False):
        """CERTIFY (Cohen et al. 2019, Algorithm in section 3.2) for each image of ``x``.

        ``n0`` draws select the top class ``c``, ``n`` fresh draws count how often ``c`` wins,
        ``p_lower`` is the one-sided ``1 - alpha`` Clopper-Pearson lower bound on that
        probability; ``p_lower <= 1/2`` abstains, otherwise ``c`` is certified within
        :meth:`radius`. With probability at least ``1 - alpha`` per image, a returned class is
        the smoothed classifier's class everywhere within the radius.

        Returns ``(predictions, radii, p_lowers)``: tensors of ``B`` (prediction ``-1`` =
        abstain, radius 0). ``per_image`` draws for one image at a time (the reference
        implementation's loop; slower, same statistics).
        """
        check_sample_sizes(n0, n)
        alpha = check_alpha(alpha)
        check_batch_size(batch_size)
        step = 1 if per_image else batch_size
        predictions, radii, lowers = [], [], []
        for start in range(0, x.shape[0], step):
            xb = x[start : start + step]
            selected = self.counts(xb, n0).argmax(1)
            counts = self.counts(xb, n)
            for i, c in enumerate(selected.tolist()):
                p_lower = clopper_pearson_lower(int(counts[i, c]), n, alpha)
                r = self.radius(p_lower)
                abstain = p_lower <= 0.5 or r <= 0
                predictions.append(ABSTAIN if abstain else c)
                radii.append(0.0 if abstain else r)
                lowers.append(p_lower)
        return torch.tensor(predictions), torch.tensor(radii, dtype=torch.float64), torch.tensor(lowers)

    def predict(self, x: torch.Tensor, n: int = 1000, alpha: float = 0.001, batch_size: int = 100) -> torch.Tensor:
        """PREDICT (Cohen et al. 2019): the top class of ``n`` draws, or ``-1`` (abstain) when a
        two-sided binomial test cannot tell it from the runner-up at level ``alpha``. A class
        returned is the smoothed classifier's with probability at least ``1 - alpha``."""
        check_sample_sizes(1, n)
        alpha = check_alpha(alpha)
        check_batch_size(batch_size)
        out = []
        for start in range(0, x.shape[0], batch_size):
            counts = self.counts(x[start : start + batch_size], n)
            top2 = counts.topk(min(2, counts.shape[1]), dim=1)
            for values, classes in zip(top2.values.tolist(), top2.indices.tolist()):
                n_a, n_b = values[0], (values[1] if len(values) > 1 else 0)
                p_value = stats.binomtest(n_a, n_a + n_b, 0.5).pvalue if n_a + n_b > 0 else 1.0
                out.append(classes[0] if p_value <= alpha else ABSTAIN)
        return torch.tensor(out)
