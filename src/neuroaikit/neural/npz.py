"""Loaders for the two small public recordings shipped as ``.npz`` files.

- :func:`load_antolik`: Antolik et al. 2016 (PLoS Comput Biol 12: e1004927), mouse V1,
  three regions, 50 held-out 31x31 images with 10 / 8 / 12 repeats. The held-out
  ("validation" in the paper) repeats become tier ``test``: that is where repeat metrics
  (oracle, FEV) are computed. The paper's training responses come without their images
  and are not loaded.
- :func:`load_allen`: Allen Brain Observatory natural scenes (experiment container
  511510667, VISp), 118 scenes down-sampled to 31x31, responses already averaged over
  50 presentations: one trial per image, tiers ``train`` (100) and ``test`` (18).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from ..errors import DataError
from .dataset import NeuralDataset, check_nan_policy, with_nan_policy

ANTOLIK_FILE = "antolik2016_mouse_v1.npz"
ALLEN_FILE = "allen_natural_scenes_v1.npz"


def _resolve(path: str | os.PathLike, filename: str) -> Path:
    """Accept the file itself, its folder (``.../neural``) or the data root."""
    path = Path(path)
    for candidate in (path, path / filename, path / "neural" / filename):
        if candidate.is_file():
            return candidate
    raise DataError(f"{path}: {filename} not found (give the file, its folder or the data root)")


def _open_npz(path: Path, required: list[str]) -> dict[str, np.ndarray]:
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise DataError(f"{path}: not a numeric .npz file (a single .npy array)")
        with data:
            missing = [k for k in required if k not in data.files]
            if missing:
                raise DataError(f"{path}: missing array(s) {missing}")
            return {k: data[k] for k in data.files}
    except DataError:
        raise
    except (ValueError, EOFError, zipfile.BadZipFile):
        # not numpy's message: it advises allow_pickle=, for a file that holds no pickle or must not be unpickled
        raise DataError(f"{path}: not a numeric .npz file (unreadable, or holds Python objects)") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc})") from None


def load_antolik(path: str | os.PathLike, region: int | str = 1, nan_policy: str = "raise") -> NeuralDataset:
    """Antolik 2016 repeats of one region (1, 2 or 3) as a :class:`NeuralDataset`.

    Trials are ordered image-major (image 0 repeat 0, image 0 repeat 1, ...), all in tier
    ``test``; ``repeats("test")`` gives back the file's array as (50, repeats, neurons).
    """
    check_nan_policy(nan_policy)
    region = int(str(region).lower().removeprefix("region"))
    if region not in (1, 2, 3):
        raise DataError(f"Antolik region must be 1, 2 or 3, got {region}")
    file = _resolve(path, ANTOLIK_FILE)
    key = f"region{region}_raw_validation_set"
    img_key = "validation_inputs_region3" if region == 3 else "validation_inputs_region1_2"
    data = _open_npz(file, [key, img_key])
    raw = data[key]  # (repeats, images, neurons)
    images = data[img_key]
    if raw.ndim != 3 or raw.shape[1] != len(images):
        raise DataError(f"{file}: {key} shape {raw.shape} does not match {len(images)} images")
    n_rep, n_img, n_neur = raw.shape
    responses = raw.transpose(1, 0, 2).reshape(n_img * n_rep, n_neur)
    image_ids = np.repeat(np.arange(n_img), n_rep)
    return with_nan_policy(
        nan_policy, str(file),
        stimuli=images.astype(np.float32),
        responses=responses,
        image_ids=image_ids,
        tiers=np.full(len(image_ids), "test"),
        stimulus_index=image_ids.copy(),
        name=f"antolik2016-region{region}",
        response_kind="dff",
        info={"source": str(file), "region": region, "repeats": n_rep},
    )


def load_allen(path: str | os.PathLike, nan_policy: str = "raise") -> NeuralDataset:
    """Allen natural scenes (trial-averaged) as a :class:`NeuralDataset` with tiers train/test.

    ``cell_specimen_ids`` holds two more ids than there are response columns, so neurons
    are numbered 0..n-1 and the ids are kept in ``info`` only.
    """
    check_nan_policy(nan_policy)
    file = _resolve(path, ALLEN_FILE)
    data = _open_npz(file, ["images", "train_image_index", "test_image_index", "train_responses", "test_responses"])
    for key in ("train_image_index", "test_image_index"):
        index = np.asarray(data[key])
        if index.dtype.kind == "f" and not bool(np.all(np.isfinite(index) & (index == np.round(index)))):
            raise DataError(f"{file}: {key} holds values that are not whole numbers; an index is an image's row "
                            f"in images")
    train_idx, test_idx = data["train_image_index"].astype(np.int64), data["test_image_index"].astype(np.int64)
    train_r, test_r = data["train_responses"], data["test_responses"]
    if len(train_idx) != len(train_r) or len(test_idx) != len(test_r) or train_r.shape[1] != test_r.shape[1]:
        raise DataError(f"{file}: image indices and response arrays disagree in length")
    image_ids = np.concatenate([train_idx, test_idx])
    return with_nan_policy(
        nan_policy, str(file),
        stimuli=data["images"].astype(np.float32),
        responses=np.concatenate([train_r, test_r]),
        image_ids=image_ids,
        tiers=np.array(["train"] * len(train_idx) + ["test"] * len(test_idx)),
        stimulus_index=image_ids.copy(),
        name="allen-natural-scenes-511510667" if file.name == ALLEN_FILE else file.stem,  # a lab's own file: its name
        response_kind="averaged_dff",
        info={"source": str(file), "cell_specimen_ids": data.get("cell_specimen_ids", np.array([])).tolist()},
    )
