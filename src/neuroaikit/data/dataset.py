"""The in-memory image dataset every loader returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from ..errors import ConfigError


@dataclass
class ImageDataset:
    """Images and labels held in memory as torch tensors.

    Attributes:
        images: float32 tensor (N, C, H, W) with values in [0, 1].
        labels: int64 tensor (N,).
        classes: class names, index = label.
        name: dataset name (``"mnist"``, ``"cifar10"`` ...).
        split: ``"train"`` or ``"test"``.
        source: the file(s) or origin the data was read from.

    It is a map-style torch dataset (``len(ds)``, ``ds[i] -> (image, label)``), so
    ``DataLoader(ds, batch_size=128)`` works directly; ``tensor_dataset()`` and
    :meth:`loader` are shortcuts.

    Example::

        ds = load_dataset("mnist", "test", data_dir="data/mnist")
        ds.shape            # (1, 28, 28)
        small = ds.subset(1000)
        for x, y in small.loader(batch_size=256): ...
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    name: str = "images"
    split: str = "train"
    source: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if self.images.ndim != 4:
            raise ConfigError(f"images must have shape (N, C, H, W), got {tuple(self.images.shape)}")
        if self.labels.ndim != 1 or len(self.labels) != len(self.images):
            raise ConfigError(
                f"labels must have shape ({len(self.images)},) to match the images, got {tuple(self.labels.shape)}"
            )

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index]

    def __repr__(self) -> str:
        return (f"ImageDataset(name={self.name!r}, split={self.split!r}, n={len(self)}, "
                f"shape={self.shape}, classes={len(self.classes)})")

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape of one image, (C, H, W)."""
        return tuple(int(s) for s in self.images.shape[1:])  # type: ignore[return-value]

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def subset(self, n_or_indices: int | Sequence[int] | np.ndarray | torch.Tensor) -> "ImageDataset":
        """The first ``n`` images (an int), or the images at the given indices."""
        if isinstance(n_or_indices, (int, np.integer)) and not isinstance(n_or_indices, bool):
            n = int(n_or_indices)
            if n < 0:
                raise ConfigError(f"subset size must be >= 0, got {n}")
            index: slice | torch.Tensor = slice(0, min(n, len(self)))
        else:
            index = torch.as_tensor(np.asarray(n_or_indices), dtype=torch.long).reshape(-1)
            if len(index) and (int(index.min()) < -len(self) or int(index.max()) >= len(self)):
                raise ConfigError(f"subset indices must lie in [0, {len(self)}), got range "
                                  f"[{int(index.min())}, {int(index.max())}]")
        return ImageDataset(self.images[index], self.labels[index], list(self.classes), self.name, self.split,
                            self.source)

    def to(self, device: str | torch.device) -> "ImageDataset":
        """A copy whose tensors live on ``device``."""
        return ImageDataset(self.images.to(device), self.labels.to(device), list(self.classes), self.name,
                            self.split, self.source)

    def class_counts(self) -> list[int]:
        """Number of images per class, index = label."""
        return torch.bincount(self.labels, minlength=self.n_classes).tolist()

    def tensor_dataset(self) -> torch.utils.data.TensorDataset:
        return torch.utils.data.TensorDataset(self.images, self.labels)

    def loader(self, batch_size: int = 128, shuffle: bool = False, seed: int | None = None,
               **kwargs) -> torch.utils.data.DataLoader:
        """A ``DataLoader`` over (image, label) batches; ``seed`` makes shuffling reproducible."""
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        return torch.utils.data.DataLoader(self.tensor_dataset(), batch_size=batch_size, shuffle=shuffle,
                                           generator=generator, **kwargs)
