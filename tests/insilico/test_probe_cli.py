"""``neuroaikit probe`` on a small CNN run (the embedded digits): result, report, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from neuroaikit.cli.main import main
from neuroaikit.insilico import GratingProtocol
from neuroaikit.insilico.config import ProbeConfig
from neuroaikit.insilico.results import InsilicoResult
from neuroaikit.insilico.workflow import probe_run
from neuroaikit.models import build_model, model_spec
from neuroaikit.progress import silent
from neuroaikit.runs import Run

FAST = ["--max-units", "6", "--images", "120", "--mei-units", "2", "--mei-steps", "3", "--folds", "3", "--quiet"]


def _make_run(path):
    torch.manual_seed(0)
    kwargs = {"image_size": 8, "channels": [4, 8], "hidden": 24}
    run = Run(path)
    run.save_model(build_model("cnn", **kwargs), model_spec("cnn", kwargs))
    run.save_config({"dataset": "digits"})
    return path


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    path = _make_run(tmp_path_factory.mktemp("probe") / "cnn-run")
    config = ProbeConfig(layers=["relu1", "relu2", "relu3"], max_units=6, n_images=120, mei_units=2, mei_steps=3,
                         probe_folds=3, protocol=GratingProtocol(n_directions=8, n_phases=4))
    return path, probe_run(path, config, progress=silent())


def test_probe_writes_a_typed_result_and_a_report_section(probed):
    path, result = probed
    stored = InsilicoResult.load(Run.open(path))
    assert [e.layer for e in stored.layers] == ["relu1", "relu2", "relu3"]
    entry = stored.layer("relu1")
    assert entry.position == "centre" and entry.measures.n_units == 4  # 4 channels
    assert stored.layer("relu3").position is None
    assert 0 <= entry.probe.accuracy <= 1 and len(entry.meis) == 2
    assert stored.lesions is not None and len(stored.lesions.rows) == 10
    from neuroaikit.report import build_report

    html = build_report(path).read_text()
    assert "In-silico physiology" in html and "lesion" in html.lower()


def test_existing_result_needs_overwrite(probed, capsys):
    path, _ = probed
    assert main(["probe", str(path), "--layers", "relu1", *FAST]) == 2
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--layers", "conv9"], "unknown layer 'conv9'"),
    (["--position", "corner"], "--position"),
    (["--noise", "loud"], "--noise"),
    (["--species", "cat"], "--species"),
])
def test_bad_input_is_one_line(probed, capsys, args, message):
    path, _ = probed
    assert main(["probe", str(path), "--overwrite", *args, *FAST]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_apertures_larger_than_the_input_are_one_line(probed, tmp_path, capsys):
    path, _ = probed
    cfg = tmp_path / "probe.json"
    cfg.write_text(json.dumps({"protocol": {"sizes": [2, 4, 50]}}))
    assert main(["probe", str(path), "--overwrite", "--config", str(cfg), *FAST]) == 2
    err = capsys.readouterr().err.strip()
    assert "do not fit" in err and len(err.splitlines()) == 1


def test_colour_model_gets_channel_tuning_with_known_channels(tmp_path, shared_data):
    """A colour CNN whose first-layer filter k reads input channel k % 3 alone: each driven
    relu1 unit is dominated by that channel, exactly, with selectivity 1 and no drive elsewhere."""
    torch.manual_seed(0)
    kwargs = {"in_channels": 3, "image_size": 32, "channels": [6, 8], "hidden": 16}
    model = build_model("cnn", **kwargs)
    with torch.no_grad():
        weight = model.conv1.weight  # (6, 3, 5, 5)
        for k in range(weight.shape[0]):
            keep = weight[k, k % 3].clone()
            weight[k] = 0
            weight[k, k % 3] = keep
    path = tmp_path / "colour-run"
    run = Run(path)
    run.save_model(model, model_spec("cnn", kwargs))
    run.save_config({"dataset": "cifar10", "data_dir": str(shared_data)})
    config = ProbeConfig(layers=["relu1", "relu3"], max_units=6, n_images=120, mei_units=2, mei_steps=30,
                         probe_folds=3, protocol=GratingProtocol(n_directions=8, n_phases=4))
    result = probe_run(path, config, progress=silent())
    colour = InsilicoResult.load(Run.open(path)).layer("relu1").colour
    assert colour["channels"] == 3 and colour["preference_index"] is None
    peaks = np.asarray(colour["peak_over_grey"])
    assert peaks.shape == (3, 6)
    driven = [k for k in range(6) if colour["dominant_channel"][k] >= 0]
    assert len(driven) >= 4
    for k in driven:
        assert colour["dominant_channel"][k] == k % 3 and colour["channel_selectivity"][k] == pytest.approx(1.0)
        assert np.abs(np.delete(peaks[:, k], k % 3)).max() < 1e-6 and peaks[k % 3, k] > 0
    entry = result.layer("relu1")
    assert np.asarray(entry.meis).shape == (2, 2, 3, 32, 32) and np.asarray(entry.mins).shape == (2, 2, 3, 32, 32)
    # colour MEIs put their contrast in the unit's channel; the ignored channels keep only what is left
    # of the random start after 30 steps (0.72 and 0.73 of the energy in the unit's channel when written)
    energy = np.asarray(colour["mei_channel_energy"])
    for unit, shares in zip(entry.map_units, energy):
        assert shares.argmax() == unit % 3 and shares.max() > 0.6
    assert result.layer("relu3").colour["channels"] == 3  # flat layers are measured too
    from neuroaikit.report import build_report

    html = build_report(path).read_text()
    assert "units driven most by channel 2" in html and "median channel selectivity" in html


def test_grey_input_models_have_no_colour_block(probed):
    _, result = probed
    assert all(entry.colour is None for entry in result.layers)


@pytest.mark.parametrize("encoder", ["latency", "poisson"])
def test_probe_records_a_spiking_network_through_its_rates_and_keeps_meis_in_the_pixel_range(tmp_path, encoder):
    """Its default layers are the rate probes; the encoders refuse pixels outside [0, 1], so the
    MEIs are clipped to the images' range; the latency encoder's surrogate gradient drives them."""
    torch.manual_seed(0)
    kwargs = {"image_size": 8, "T": 3, "channels": [2, 4], "hidden": 12, "encoder": encoder}
    run = Run(tmp_path / "snn")
    run.save_model(build_model("snn_cnn", **kwargs), model_spec("snn_cnn", kwargs))
    run.save_config({"dataset": "digits"})
    config = ProbeConfig(max_units=4, n_images=120, mei_units=2, mei_steps=3, probe_folds=3,
                         protocol=GratingProtocol(n_directions=8, n_phases=4))
    result = probe_run(run.path, config, progress=silent())
    assert [entry.layer for entry in result.layers] == ["rate1", "rate2", "rate3"]
    for entry in result.layers:
        images = np.asarray(entry.meis + entry.mins)
        assert len(entry.meis) == len(entry.map_units) > 0
        assert images.min() >= 0 and images.max() <= 1 and images.std() > 0
