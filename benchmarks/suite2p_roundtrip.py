"""Real suite2p output in, the stimulus responses out: suite2p run on a simulated movie with
known cells, then read by ``neuroaikit.neural.suite2p``.

Simulates a two-plane two-photon recording (cells with Gaussian footprints over a slowly
drifting neuropil, calcium transients from image-driven spikes, shot noise; the two planes
interleaved frame by frame in one TIFF, as a piezo scan records them), runs suite2p on it (its
default settings but ``nplanes`` 2, rigid registration only, a 10-px cell diameter, and the
``combined`` folder only from 1.0 on; in its own Python environment, because its
pins pull cellpose and torchvision), writes the stimulus log, images and the scope's frame clock
(one time per imaging frame), and loads the folder with
:class:`~neuroaikit.neural.suite2p.Suite2pRecording`. It reports:

- ``exact``: the largest difference between the loaded responses and the same means computed
  here with numpy (float32 sums: it is rounding, read it against the largest response) from suite2p's own ``spks.npy``/``iscell.npy`` on each plane's clock (plane k:
  every second time from the k-th): the loader reads what suite2p wrote;
- ``recovery``: the ROIs that suite2p found within 3 px of a simulated cell, and the median
  over those of the correlation between the loaded per-trial response and the cell's true spike
  count per trial (``spks`` and ``f`` signals);
- ``combined``: where suite2p wrote its ``combined`` folder, the largest difference between
  its responses and the plane folders' (each ROI on its own plane's clock through its
  ``iplane``); ``db and settings only``: where suite2p (1.x) wrote ``db.npy`` and
  ``settings.npy``, the same with ``ops.npy`` set aside (1.x saves it only with
  ``save_ops_orig``); ``--mesoscope`` gives suite2p each page as two strips (a mesoscope's
  ROIs: ``lines``, ``dy``, ``dx``), ``--flyback`` makes plane 0 a flyback plane
  (``ignore_flyback``);
- what the pickled ``ops.npy`` held that the restricted unpickler had to admit (``date_proc``
  with its time zone) and the suite2p version.

    python benchmarks/suite2p_roundtrip.py --suite2p-python /path/to/env/bin/python

For suite2p 0.14 the environment needs ``pip install --no-deps suite2p==0.14.6`` plus numpy<2
(0.14 fails in its ROI detection under numpy 2), scipy, numba, natsort, tifffile,
scanimage-tiff-reader, scikit-learn, matplotlib, tqdm and torch; it imports cellpose only for its
anatomical mode. suite2p 1.x imports cellpose at start (``pip install --no-deps suite2p==1.1.0
cellpose`` plus the packages above, numpy 2 is fine, and fastremap, fill-voids, imagecodecs,
opencv-python-headless, roifile), and cellpose imports ``torchvision.transforms`` at start,
which suite2p's functional pipeline never calls; where no torchvision wheel matches the
installed torch (a CPU torch), a stand-in package whose modules raise on any use lets it import
(how the 1.x page was made: see its description). Prints every figure; ``--json FILE`` also
writes them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from neuroaikit.io import write_text  # noqa: E402
from neuroaikit.neural.suite2p import Suite2pRecording, read_pickled_npy  # noqa: E402

FS = 10.0  # volume rate (suite2p's fs, per plane); the scope records 2 x FS frames per second
TAU = 1.0  # calcium decay, seconds
SIZE = 96  # pixels per side
PLANES = 2
CELLS_PER_PLANE = 16
N_IMAGES, REPEATS = 30, 5
TRIAL, ON = 1.5, 0.5  # seconds per trial; the image is on for the first ON seconds
MATCH_PX = 3.0

RUN_SUITE2P = """
import json, pathlib, sys
import numpy as np
import suite2p, tifffile
tiffs = pathlib.Path(sys.argv[2])
tifffile.imwrite(tiffs / "movie.tif", np.load(tiffs / "movie.npy"))
(tiffs / "movie.npy").unlink()
given = json.load(open(sys.argv[1]))
db = {"data_path": [str(tiffs)], "save_path0": sys.argv[3]}
strips = {k: given[k] for k in ("lines", "dy", "dx") if k in given}  # a mesoscope's strips of each page
if hasattr(suite2p, "default_ops"):  # before 1.0: one flat ops dict
    suite2p.run_s2p(ops={**suite2p.default_ops(), **given, **({"mesoscan": True} if strips else {})}, db=db)
else:  # 1.x: the data's description in db, nested settings
    settings = suite2p.default_settings()
    settings.update(fs=given["fs"], tau=given["tau"], diameter=[given["diameter"]] * 2, torch_device="cpu")
    settings["registration"].update(nonrigid=given["nonrigid"], batch_size=given["batch_size"])
    settings["io"]["combined"] = given["combined"]
    db.update(strips, nplanes=given["nplanes"], ignore_flyback=given.get("ignore_flyback"))
    suite2p.run_s2p(db={**suite2p.default_db(), **db}, settings=settings)
print("suite2p", suite2p.version)
"""


def simulate(rng: np.random.Generator) -> dict:
    """Movie (frames, H, W) int16 with the planes interleaved, onsets, image ids, true spike
    counts per trial (trials, cells) and cell centres (cells, 3: y, x, plane)."""
    ids = rng.permutation(np.repeat(np.arange(N_IMAGES), REPEATS))
    n_volumes = int((len(ids) * TRIAL + 2.0) * FS)
    onsets = 1.0 + np.arange(len(ids)) * TRIAL
    yy, xx = np.mgrid[:SIZE, :SIZE]
    grid = [(y, x) for y in range(12, SIZE - 8, 20) for x in range(12, SIZE - 8, 20)]
    movie = np.empty((n_volumes * PLANES, SIZE, SIZE), np.float32)
    centres, counts = [], []
    for plane in range(PLANES):
        frame_times = (np.arange(n_volumes) + plane / PLANES) / FS
        picks = rng.choice(len(grid), CELLS_PER_PLANE, replace=False)
        centre = np.array([grid[i] for i in picks], float) + rng.uniform(-3, 3, (CELLS_PER_PLANE, 2))
        tuning = rng.gamma(0.6, 4.0, (CELLS_PER_PLANE, N_IMAGES))  # spikes per presentation
        spikes = rng.poisson(0.05, (CELLS_PER_PLANE, n_volumes)).astype(np.float32)  # spontaneous
        count = np.zeros((len(ids), CELLS_PER_PLANE))
        for t, (onset, image) in enumerate(zip(onsets, ids)):
            frames = np.flatnonzero((frame_times >= onset) & (frame_times < onset + ON))
            drawn = rng.poisson(tuning[:, image] / len(frames), (len(frames), CELLS_PER_PLANE)).T
            spikes[:, frames] += drawn
            count[t] = drawn.sum(1)
        calcium = np.zeros_like(spikes)
        decay = np.exp(-1.0 / (FS * TAU))
        for i in range(n_volumes):
            calcium[:, i] = (calcium[:, i - 1] * decay if i else 0.0) + spikes[:, i]
        footprints = np.exp(-((yy[None] - centre[:, 0, None, None]) ** 2 + (xx[None] - centre[:, 1, None, None]) ** 2)
                            / (2 * 2.5 ** 2))
        neuropil = 150 + 20 * np.sin(2 * np.pi * np.arange(n_volumes) / (60 * FS))[:, None, None] * np.ones((1, SIZE, SIZE))
        cells = np.tensordot(60 + 120 * calcium.T, footprints, axes=(1, 0))
        movie[plane::PLANES] = neuropil + cells
        centres.append(np.column_stack([centre, np.full(CELLS_PER_PLANE, plane)]))
        counts.append(count)
    movie = rng.poisson(np.clip(movie, 0, None)).astype(np.int16)
    return {"movie": movie, "ids": ids, "onsets": onsets + 0.02, "counts": np.hstack(counts),
            "centres": np.vstack(centres), "n_volumes": n_volumes}


def direct_means(folder: Path, clock: np.ndarray, onsets: np.ndarray, window: tuple[float, float],
                 strips: int) -> np.ndarray:
    """Per-trial means of each folder's kept ``spks`` on its plane's share of ``clock``, with
    numpy (folder j holds strip j % strips of plane j // strips)."""
    out = []
    for folder_number in range(PLANES * strips):
        path = folder / "suite2p" / f"plane{folder_number}"
        if not (path / "spks.npy").is_file():  # a flyback plane: suite2p extracted nothing
            continue
        spks = np.load(path / "spks.npy")[np.load(path / "iscell.npy")[:, 0] > 0.5]
        times = clock[folder_number // strips::PLANES][: spks.shape[1]]
        out.append(np.stack([spks[:, (times >= t + window[0]) & (times < t + window[1])].mean(1) for t in onsets]))
    return np.hstack(out)


def recovery(ds, truth: dict) -> tuple[int, int, float]:
    """(ROIs matched to a cell, cells matched, median correlation of matched ROI responses with
    the cell's true spike counts)."""
    rs, matched_cells = [], set()
    for roi, (x, y, plane) in enumerate(ds.cortical_positions):
        same = np.flatnonzero(truth["centres"][:, 2] == plane)
        dist = np.hypot(truth["centres"][same, 0] - y, truth["centres"][same, 1] - x)
        if dist.min() <= MATCH_PX:
            cell = int(same[dist.argmin()])
            matched_cells.add(cell)
            rs.append(np.corrcoef(ds.responses[:, roi], truth["counts"][:, cell])[0, 1])
    return len(rs), len(matched_cells), float(np.median(rs)) if rs else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite2p-python", default=sys.executable,
                        help="the Python of an environment with suite2p installed (default: this one)")
    parser.add_argument("--work-dir", default=None, help="keep the movie and suite2p output here (default: a temp dir)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mesoscope", action="store_true",
                        help="give suite2p each page as two strips of lines (a mesoscope's ROIs: lines, dy, dx), "
                             "so it writes one folder per plane and strip")
    parser.add_argument("--flyback", action="store_true",
                        help="tell suite2p that plane 0 is a flyback plane (ignore_flyback [0]): it processes plane 1 only")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    probe = subprocess.run([args.suite2p_python, "-c", "import suite2p, tifffile; print(suite2p.version)"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        print(f"error: {args.suite2p_python} cannot import suite2p and tifffile (give --suite2p-python, see the "
              f"docstring): {(probe.stderr.strip().splitlines() or ['not runnable'])[-1]}", file=sys.stderr)
        return 2
    if args.work_dir and Path(args.work_dir).exists() and any(Path(args.work_dir).iterdir()):
        print(f"error: --work-dir {args.work_dir} is not empty (suite2p would take its TIFFs as its own)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.work_dir or tmp)
        (root / "tiffs").mkdir(parents=True, exist_ok=True)
        truth = simulate(np.random.default_rng(args.seed))
        np.save(root / "tiffs" / "movie.npy", truth["movie"])  # made a TIFF by suite2p's environment
        # 0.14.6 fails building its combined view of one channel; 1.x builds it
        combined = probe.stdout.strip().splitlines()[-1].split(".")[0] not in ("0", "")
        settings = {"fs": FS, "tau": TAU, "nplanes": PLANES, "nonrigid": False, "batch_size": 500,
                    "combined": combined, "diameter": 10}
        strips = 2 if args.mesoscope else 1
        if args.flyback:
            settings["ignore_flyback"] = [0]
        if args.mesoscope:  # the strips stacked down the page, placed the same way in the field
            half = SIZE // strips
            settings.update(lines=[list(range(k * half, (k + 1) * half)) for k in range(strips)],
                            dy=[k * half for k in range(strips)], dx=[0] * strips)
        (root / "settings.json").write_text(json.dumps(settings))
        start = time.perf_counter()
        ran = subprocess.run([args.suite2p_python, "-c", RUN_SUITE2P, str(root / "settings.json"), str(root / "tiffs"),
                              str(root)], capture_output=True, text=True)
        suite2p_s = time.perf_counter() - start
        if ran.returncode != 0:
            print(f"error: suite2p failed ({args.suite2p_python}): {ran.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
            return 2
        version = ran.stdout.strip().splitlines()[-1].split()[-1]
        clock = np.arange(truth["n_volumes"] * PLANES) / (FS * PLANES)  # one time per imaging frame
        np.save(root / "frame_times.npy", clock)
        np.save(root / "images.npy", np.random.default_rng(1).uniform(0, 255, (N_IMAGES, 36, 64)).astype(np.float32))
        with open(root / "stimulus_log.csv", "w") as fh:
            fh.write("onset,image_id\n")
            fh.writelines(f"{t:.4f},{i}\n" for t, i in zip(truth["onsets"], truth["ids"]))
        start = time.perf_counter()
        ds = Suite2pRecording(suite2p=str(root / "suite2p")).load()
        load_s = time.perf_counter() - start
        f_ds = Suite2pRecording(suite2p=str(root / "suite2p"), signal="f").load()
        direct = direct_means(root, clock, truth["onsets"], (0.0, 0.5), strips)
        exact = float(np.abs(ds.responses - direct).max())
        folders = [p for p in range(PLANES * strips) if (root / "suite2p" / f"plane{p}" / "F.npy").is_file()]
        n_rois = sum(len(np.load(root / "suite2p" / f"plane{p}" / "iscell.npy")) for p in folders)
        matched, cells, r_spks = recovery(ds, truth)
        _, _, r_f = recovery(f_ds, truth)
        ops = read_pickled_npy(root / "suite2p" / "plane1" / "ops.npy")
        combined_difference = settings_only_difference = None
        if (root / "suite2p" / "combined").is_dir():  # the same ROIs again, each tagged with its plane
            again = Suite2pRecording(suite2p=str(root / "suite2p" / "combined"), stimulus_log=str(root / "stimulus_log.csv"),
                                     images=str(root / "images.npy"), frame_times=str(root / "frame_times.npy")).load()
            combined_difference = float(np.abs(again.responses - ds.responses).max())
        if all((root / "suite2p" / f"plane{p}" / "db.npy").is_file() for p in folders):
            for p in folders:  # 1.x saves ops.npy only with save_ops_orig; read db.npy + settings.npy
                (root / "suite2p" / f"plane{p}" / "ops.npy").rename(root / "suite2p" / f"plane{p}" / "ops.npy.aside")
            try:
                without = Suite2pRecording(suite2p=str(root / "suite2p")).load()
            finally:  # --work-dir keeps suite2p's folder as it wrote it
                for p in folders:
                    (root / "suite2p" / f"plane{p}" / "ops.npy.aside").rename(root / "suite2p" / f"plane{p}" / "ops.npy")
            settings_only_difference = float(np.abs(without.responses - ds.responses).max())
        figures = {
            "suite2p_version": version, "cells_simulated": len(truth["centres"]), "planes": PLANES,
            "strips_per_plane": strips, "flyback_planes": settings.get("ignore_flyback", []),
            "folders_with_traces": len(folders),
            "trials": len(truth["ids"]), "frames_per_plane": truth["n_volumes"], "rois_found": n_rois,
            "rois_kept": ds.n_neurons, "rois_matched": matched, "cells_matched": cells,
            "exact_max_abs_difference": exact, "exact_relative_to_largest_response": exact / float(np.abs(direct).max()),
            "median_r_spks": r_spks, "median_r_f": r_f,
            "combined_folder_max_abs_difference": combined_difference,
            "db_and_settings_only_max_abs_difference": settings_only_difference,
            "tiers": ds.summary()["tiers"], "ops_date_proc_has_time_zone": getattr(ops.get("date_proc"), "tzinfo", None) is not None,
            "suite2p_seconds": round(suite2p_s, 1), "load_seconds": round(load_s, 2),
        }
    for key, value in figures.items():
        print(f"{key:32s} {value}")
    if args.json:
        write_text(Path(args.json), json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
