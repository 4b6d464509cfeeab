"""``neuroaikit probe`` on a small CNN run (the embedded digits): result, report, bad input."""

from __future__ import annotations

import json

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
