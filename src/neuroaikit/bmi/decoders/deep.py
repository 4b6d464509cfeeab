"""Deep EEG decoders, EEGNet and ShallowConvNet, and a scikit-learn wrapper that trains them
through the execution layer (:class:`~neuroaikit.execution.Execution`: device, precision,
threads, seeds) with the toolkit's objectives, optionally with brain-like noise layers.

braindecode's models are not used: braindecode requires torchaudio, which pins another torch.
The two architectures are written from the papers and checked layer by layer (output shapes
and parameter counts) in ``tests/bmi/test_decoders.py``:

- EEGNet-8,2 (Lawhern et al. 2018, J Neural Eng 15:056013, Table 2): temporal conv
  (F1 = 8, kernel sfreq/2, no bias) -> BN -> depthwise spatial conv (D = 2, max-norm 1) -> BN
  -> ELU -> average pool 4 -> dropout -> separable conv (16 taps, F2 = 16) -> BN -> ELU ->
  average pool 8 -> dropout -> dense (max-norm 0.25).
- ShallowConvNet (Schirrmeister et al. 2017, Hum Brain Mapp 38:5391): temporal conv 40 x 25
  -> spatial conv 40 x channels (no bias) -> BN -> square -> average pool 75 stride 15 ->
  log -> dropout (0.5 by default) -> dense.

Inputs are epochs in uV; the first layer of the wrapper divides by a scale fixed at fit time
(the training data's standard deviation), so attacks and noise stay in uV.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from ...config import NON_NEGATIVE_INT, POSITIVE, POSITIVE_INT, InstanceOf, Interval, Options
from ...errors import DataError
from ...execution import Execution, ExecutionConfig, derive_seed
from .ssvep import LogitsClassifier, ValidatedEstimator, check_fitted_shape, epochs_shape


class _MaxNorm(nn.Module):
    """Renormalises the wrapped layer's weight to a maximum norm per output unit before each
    forward pass (Keras' ``max_norm`` constraint, which both papers use)."""

    def __init__(self, layer: nn.Conv2d | nn.Linear, max_norm: float):
        super().__init__()
        self.layer = layer
        self.max_norm = max_norm

    def forward(self, x):
        if self.training:
            with torch.no_grad():
                w = self.layer.weight
                norms = w.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (w.dim() - 1)))
                w.mul_(torch.clamp(self.max_norm / norms, max=1.0))
        return self.layer(x)


class EEGNet(nn.Module):
    """EEGNet (Lawhern et al. 2018); input ``(B, channels, samples)``, output logits.

    Args:
        n_channels, n_samples, n_classes (int):
            Epoch shape and class count.
        sfreq (float):
            Sampling rate; the temporal kernel is ``sfreq / 2`` samples (64 at 128 Hz, as published).
        F1, D, F2 (int):
            Temporal filters, spatial filters per temporal filter, pointwise filters (8, 2, 16).
        dropout (float):
            0.5 by default, the paper's within-subject value (it used 0.25 across subjects);
            :class:`DeepDecoder` passes its own ``dropout`` (``neuroaikit bmi --deep-dropout``).
    """

    def __init__(self, n_channels: int, n_samples: int, n_classes: int, sfreq: float = 128.0, F1: int = 8,
                 D: int = 2, F2: int = 16, dropout: float = 0.5):
        super().__init__()
        if n_samples < 32:
            raise DataError(f"EEGNet needs epochs of at least 32 samples (its poolings shrink time 32-fold), got "
                            f"{n_samples} at {sfreq:g} Hz")
        k1 = max(int(round(sfreq / 2)), 2)
        self.temporal = nn.Conv2d(1, F1, (1, k1), padding="same", bias=False)
        self.bn1 = nn.BatchNorm2d(F1)
        self.spatial = _MaxNorm(nn.Conv2d(F1, F1 * D, (n_channels, 1), groups=F1, bias=False), 1.0)
        self.bn2 = nn.BatchNorm2d(F1 * D)
        self.pool1 = nn.AvgPool2d((1, 4))
        self.drop1 = nn.Dropout(dropout)
        self.separable_depth = nn.Conv2d(F1 * D, F1 * D, (1, 16), padding="same", groups=F1 * D, bias=False)
        self.separable_point = nn.Conv2d(F1 * D, F2, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(F2)
        self.pool2 = nn.AvgPool2d((1, 8))
        self.drop2 = nn.Dropout(dropout)
        self.elu = nn.ELU()
        self.flatten = nn.Flatten()
        self.classifier = _MaxNorm(nn.Linear(F2 * (n_samples // 32), n_classes), 0.25)

    def forward(self, x):
        x = x.unsqueeze(1)
        x = self.bn1(self.temporal(x))
        x = self.drop1(self.pool1(self.elu(self.bn2(self.spatial(x)))))
        x = self.separable_point(self.separable_depth(x))
        x = self.drop2(self.pool2(self.elu(self.bn3(x))))
        return self.classifier(self.flatten(x))


class _Square(nn.Module):
    def forward(self, x):
        return x * x


class _SafeLog(nn.Module):
    def forward(self, x):
        return torch.log(torch.clamp(x, min=1e-6))


class ShallowConvNet(nn.Module):
    """ShallowConvNet (Schirrmeister et al. 2017); input ``(B, channels, samples)``, logits out.
    The kernel and pooling lengths are the published ones at 250 Hz, scaled to ``sfreq``."""

    def __init__(self, n_channels: int, n_samples: int, n_classes: int, sfreq: float = 250.0,
                 n_filters: int = 40, dropout: float = 0.5):
        super().__init__()
        scale = sfreq / 250.0
        kernel, pool, stride = (max(int(round(v * scale)), 1) for v in (25, 75, 15))
        if n_samples < kernel + pool - 1:
            raise DataError(f"ShallowConvNet needs epochs of at least {kernel + pool - 1} samples at "
                            f"{sfreq:g} Hz, got {n_samples}")
        self.temporal = nn.Conv2d(1, n_filters, (1, kernel))
        self.spatial = nn.Conv2d(n_filters, n_filters, (n_channels, 1), bias=False)
        self.bn = nn.BatchNorm2d(n_filters)
        self.square = _Square()
        self.pool = nn.AvgPool2d((1, pool), stride=(1, stride))
        self.log = _SafeLog()
        self.drop = nn.Dropout(dropout)
        self.flatten = nn.Flatten()
        n_out = (n_samples - kernel + 1 - pool) // stride + 1
        self.classifier = nn.Linear(n_filters * n_out, n_classes)

    def forward(self, x):
        x = self.spatial(self.temporal(x.unsqueeze(1)))
        x = self.drop(self.log(self.pool(self.square(self.bn(x)))))
        return self.classifier(self.flatten(x))


ARCHITECTURES = {"eegnet": EEGNet, "shallow": ShallowConvNet}


class _Scaled(nn.Module):
    """Divides the uV input by a fixed scale before the network."""

    def __init__(self, net: nn.Module, scale: float):
        super().__init__()
        self.register_buffer("scale", torch.tensor(float(scale)))
        self.net = net

    def forward(self, x):
        return self.net(x / self.scale)


class DeepDecoder(LogitsClassifier, ValidatedEstimator):
    """Train :class:`EEGNet` or :class:`ShallowConvNet` like a scikit-learn classifier.

    Args:
        architecture (str): ``"eegnet"`` or ``"shallow"`` (ShallowConvNet).
        sfreq (float):
            Sampling rate of the epochs.
        epochs, batch_size, lr: training length (>= 1), batch size (>= 2: batch norm needs two
            examples, so a last batch of one is skipped), Adam learning rate (> 0).
        dropout (float):
            Dropout rate of the network, in [0, 1) (default 0.5: EEGNet's within-subject value and
            ShallowConvNet's; Lawhern et al. 2018 used 0.25 for EEGNet across subjects).
        noise (dict or None):
            Brain-like noise while training and deployed: ``{"input": "gaussian:0.5", ...}``
            (:func:`~neuroaikit.noise.inject_noise` sites; sigma in units of the scaled input).
            The decoder is then stochastic: evaluate attacks on it with EOT.
        seed (int): seeds the initial weights, the batch order and the noise draws.
        execution (ExecutionConfig or None):
            Device, precision and threads (default: auto device, float32).

    ``fit`` checks the parameters before anything is built (a bad one is a one-line
    ConfigError naming it); epochs given to ``predict`` must have the channels and samples
    ``fit`` saw (else a one-line DataError).
    """

    _parameter_constraints: ClassVar[dict] = {
        "architecture": [Options(tuple(ARCHITECTURES))],
        "sfreq": [POSITIVE],
        "epochs": [POSITIVE_INT],
        "batch_size": [Interval(int, 2, None)],
        "lr": [POSITIVE],
        "dropout": [Interval(float, 0, 1, closed="left")],
        "noise": [InstanceOf(Mapping, description="a mapping of noise sites to noise specs"), None],
        "seed": [NON_NEGATIVE_INT],
        "execution": [InstanceOf(ExecutionConfig, description="an ExecutionConfig"), None],
    }

    def __init__(self, architecture: str = "eegnet", sfreq: float = 128.0, epochs: int = 150, batch_size: int = 32,
                 lr: float = 1e-3, dropout: float = 0.5, noise: dict | None = None, seed: int = 0, execution=None):
        self.architecture = architecture
        self.sfreq = sfreq
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.dropout = dropout
        self.noise = noise
        self.seed = seed
        self.execution = execution

    def _build(self, n_channels: int, n_samples: int, n_classes: int) -> nn.Module:
        net = ARCHITECTURES[self.architecture](n_channels, n_samples, n_classes, sfreq=self.sfreq,
                                               dropout=self.dropout)
        if self.noise:
            from ...noise import inject_noise

            net = inject_noise(net, self.noise, copy=False)
        return net

    def fit(self, X, y):
        from ...training.objectives import cross_entropy

        self._validate_params()
        X = np.asarray(X, dtype=np.float32)
        y = np.asarray(y)
        self.n_channels_, self.n_samples_ = epochs_shape(self, X)
        self.classes_, y_index = np.unique(y, return_inverse=True)
        torch.manual_seed(self.seed)
        scale = float(X.std()) or 1.0
        module = _Scaled(self._build(X.shape[1], X.shape[2], len(self.classes_)), scale)
        config = self.execution or ExecutionConfig()
        with Execution(config, join_group=False) as ex:
            model = ex.wrap(module)
            optimizer = torch.optim.Adam(model.parameters(), lr=self.lr)
            scaler = ex.grad_scaler()
            xs = torch.as_tensor(X)
            ys = torch.as_tensor(y_index, dtype=torch.long)
            self.history_ = []
            for epoch in range(self.epochs):
                generator = torch.Generator().manual_seed(derive_seed(self.seed, epoch))
                order = torch.randperm(len(xs), generator=generator)
                model.train()
                total = 0.0
                for start in range(0, len(xs), self.batch_size):
                    idx = order[start:start + self.batch_size]
                    if len(idx) < 2:
                        continue  # batch norm needs two examples
                    xb, yb = xs[idx].to(ex.device), ys[idx].to(ex.device)
                    with ex.autocast():
                        loss, _ = cross_entropy(model, xb, yb)
                    ex.optimizer_step(loss, optimizer, scaler)
                    total += loss.item() * len(idx)
                self.history_.append(total / len(xs))
            self.device_ = str(ex.device)
        self.module_ = module.cpu().eval()
        return self

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Differentiable logits for uV epochs ``(B, C, T)``, computed in the network's dtype
        (float32 as fitted; float64 after ``as_torch(decoder).double()``, which shares it)."""
        check_fitted_shape(self, x)
        return self.module_(x.to(next(self.module_.parameters()).dtype))

    def _logits_array(self, X) -> np.ndarray:
        with torch.no_grad():
            x = X if torch.is_tensor(X) else torch.as_tensor(np.asarray(X, dtype=np.float32))
            return self.logits(x).float().numpy()
