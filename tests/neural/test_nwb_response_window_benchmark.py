"""benchmarks/nwb_response_window.py: on simulated back-to-back flashes a window after the flash
holds more of the flash's own response than the presentation's interval (page
nwb_response_window), and the loader's windows are the frames a direct computation picks."""

import argparse
import json

import numpy as np
import pytest

pytestmark = pytest.mark.filterwarnings("ignore:The linked table:UserWarning")


def test_a_window_after_the_flash_captures_its_response(tmp_path, benchmark_script):
    bench = benchmark_script("nwb_response_window")
    out = tmp_path / "figures.json"
    assert bench.main(["--quick", "--neurons", "40", "--images", "40", "--decays", "1.0", "--json", str(out)]) == 0
    summary = {row["window"]: row for row in json.loads(out.read_text())["summary"]}
    assert summary["0.2-0.7 s"]["r_shown"] > summary["presentation"]["r_shown"] + 0.1
    assert summary["presentation"]["r_previous"] > summary["presentation"]["r_shown"]


def test_the_loaded_window_means_are_the_frames_in_the_window(tmp_path, benchmark_script):
    bench = benchmark_script("nwb_response_window")
    args = argparse.Namespace(
        neurons=5, images=6, repeats=2, flash=0.25, latency=0.05, rise=0.05, mean_rate=5.0, baseline_rate=1.0,
        amplitude=0.1, noise=0.05, rate=30.0)
    session = bench.simulate(args, 0.4, 0)
    bench.write_session(tmp_path / "s.nwb", session, 0.25)
    ds = bench.load_nwb(tmp_path / "s.nwb", window=(0.1, 0.5))
    stamps, dff = session["stamps"], session["dff"]
    expected = np.stack([dff[(stamps >= t + 0.1) & (stamps < t + 0.5)].mean(0) for t in session["onsets"]])
    np.testing.assert_allclose(ds.responses, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(ds.image_ids, session["shown"])
