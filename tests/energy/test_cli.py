import torch

from neuroaikit.cli.main import main
from neuroaikit.models import build_from_spec, model_spec
from neuroaikit.runs import Run


def make_run(path, name, kwargs, dataset="digits"):
    spec = model_spec(name, kwargs)
    model = build_from_spec(spec)
    run = Run(path)
    run.path.mkdir(parents=True)
    run.save_model(model, spec)
    run.save_metrics({"dataset": dataset, "model": name})
    return run


SHAPE = {"in_channels": 1, "image_size": 8, "n_classes": 10}


def test_energy_command_compares_an_ann_and_an_snn_and_reports(tmp_path, capsys):
    torch.manual_seed(0)
    ann = make_run(tmp_path / "ann", "cnn", {**SHAPE, "channels": [4, 8], "hidden": 16})
    snn = make_run(tmp_path / "snn", "snn_cnn", {**SHAPE, "T": 3, "channels": [4, 8], "hidden": 16})
    assert main(["energy", str(ann.path), str(snn.path), "--subset", "40", "--precision", "fp16"]) == 0
    out = capsys.readouterr().out
    assert "assumptions" in out and "Effective_ACs" in out
    for run in (ann, snn):
        result = run.result("energy")
        assert result["precision"] == "fp16" and len(result["comparison"]) == 2
    assert ann.result("energy")["this"]["SynapticOperations"]["Effective_ACs"] == 0
    assert snn.result("energy")["this"]["SynapticOperations"]["Effective_ACs"] > 0
    from neuroaikit.report.sections.energy import build

    assert len(build(snn)) == 1
    (tmp_path / "empty").mkdir()
    assert build(Run(tmp_path / "empty")) == []
    from neuroaikit.report import build_report

    page = build_report(str(snn.path))
    assert "Energy and NeuroBench metrics" in open(page, encoding="utf-8").read()


def test_energy_command_errors_are_one_line(tmp_path, capsys):
    a = make_run(tmp_path / "a", "cnn", {**SHAPE, "channels": [2, 2], "hidden": 4})
    b = make_run(tmp_path / "b", "cnn", {**SHAPE, "channels": [2, 2], "hidden": 4}, dataset="mnist")
    assert main(["energy", str(a.path), str(b.path)]) == 2
    assert "different datasets" in capsys.readouterr().err
    assert main(["energy", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1
    assert main(["energy", str(a.path), "--subset", "0"]) == 2
