"""``neuroaikit energy`` on tiny digits runs: the comparison, the typed result, the report, the
execution layer, and bad input (one-line errors; results never replaced without --overwrite)."""

import time

import pytest
import torch

from neuroaikit.cli.main import main
from neuroaikit.energy import EnergyConfig, EnergyResult, energy_for_runs
from neuroaikit.errors import ConfigError
from neuroaikit.execution import ExecutionConfig
from neuroaikit.models import build_from_spec, model_spec
from neuroaikit.progress import silent
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
TINY = {**SHAPE, "channels": [2, 2], "hidden": 4}


def test_energy_command_compares_an_ann_and_an_snn_and_reports(tmp_path, capsys):
    torch.manual_seed(0)
    ann = make_run(tmp_path / "ann", "cnn", {**SHAPE, "channels": [4, 8], "hidden": 16})
    snn = make_run(tmp_path / "snn", "snn_cnn", {**SHAPE, "T": 3, "channels": [4, 8], "hidden": 16})
    assert main(["energy", str(ann.path), str(snn.path), "--subset", "40", "--precision", "fp16",
                 "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "assumptions" in out and "Effective_ACs" in out and "measured on cpu" in out
    for run in (ann, snn):  # each run's report now shows the comparison (it was left out of date)
        assert f"report: {run.path / 'report.html'}" in out
        assert "Energy and NeuroBench metrics" in (run.path / "report.html").read_text()
    for run in (ann, snn):
        raw = run.result("energy")
        assert raw["precision"] == "fp16" and len(raw["comparison"]) == 2 and raw["n_samples"] == 40
        result = EnergyResult.load(run)
        assert result.to_dict() == raw  # the typed result is the file, field for field
        assert result.execution["device"] == "cpu"
        assert [row.run for row in result.comparison] == ["ann", "snn"]
        assert result.this.energy.precision == "fp16"
    assert EnergyResult.load(ann).this.SynapticOperations.Effective_ACs == 0
    assert EnergyResult.load(snn).this.SynapticOperations.Effective_ACs > 0
    from neuroaikit.report.sections.energy import build

    assert len(build(snn)) == 1
    (tmp_path / "empty").mkdir()
    assert build(Run(tmp_path / "empty")) == []
    from neuroaikit.report import build_report

    page = build_report(str(snn.path))
    text = open(page, encoding="utf-8").read()
    assert "Energy and NeuroBench metrics" in text and "Not counted" not in text
    assert EnergyResult.load(snn).this.uncounted_weights == []  # every weight belongs to a counted layer
    stored = EnergyResult.load(snn)
    stored.this.uncounted_weights = ["body.w"]  # as a model with a product no hook sees records it
    stored.save(snn)
    assert "Not counted: the products of weights body.w" in open(build_report(str(snn.path)), encoding="utf-8").read()
    stored.this.ActivationSparsity = None  # as a model without activation modules records it
    stored.comparison[1].ActivationSparsity = None
    stored.save(snn)
    assert EnergyResult.load(snn).this.ActivationSparsity is None
    text = open(build_report(str(snn.path)), encoding="utf-8").read()
    assert text.count("<td>not counted</td>") == 2  # the metric table and the comparison row


def test_energy_command_errors_are_one_line(tmp_path, capsys):
    a = make_run(tmp_path / "a", "cnn", TINY)
    b = make_run(tmp_path / "b", "cnn", TINY, dataset="mnist")
    assert main(["energy", str(a.path), str(b.path)]) == 2
    assert "different datasets" in capsys.readouterr().err
    assert main(["energy", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1
    assert main(["energy", str(a.path), str(a.path)]) == 2
    assert "given twice" in capsys.readouterr().err
    wrong_size = make_run(tmp_path / "c", "cnn", {**TINY, "image_size": 28})
    assert main(["energy", str(a.path), str(wrong_size.path)]) == 2
    err = capsys.readouterr().err
    assert "does not accept images of shape (1, 8, 8)" in err and err.count("\n") == 1
    assert not (a.path / "results" / "energy.json").exists()  # nothing measured, nothing written


@pytest.mark.parametrize("option, value", [
    ("--subset", "0"), ("--batch-size", "0"), ("--precision", "fp64"), ("--energy-precision", "bf16"),
    ("--threads", "0"), ("--device", "tpu"),
])
def test_bad_values_are_one_line_errors_naming_the_option(tmp_path, capsys, option, value):
    a = make_run(tmp_path / "a", "cnn", TINY)
    assert main(["energy", str(a.path), option, value]) == 2
    err = capsys.readouterr().err
    named = "--energy-precision" if option == "--precision" else option
    assert err.startswith(f"error: {named} ") and err.count("\n") == 1, err
    assert not (a.path / "results").exists()


def test_energy_config_checks_its_values():
    with pytest.raises(ConfigError, match="subset must be an integer >= 1"):
        EnergyConfig(subset=0)
    with pytest.raises(ConfigError, match="energy_precision must be one of 'fp32', 'fp16', 'int8'"):
        EnergyConfig(energy_precision="32")
    with pytest.raises(ConfigError, match="execution.precision must be '32'"):
        EnergyConfig(execution=ExecutionConfig(precision="bf16-mixed"))
    assert EnergyConfig.from_dict({"subset": None, "execution": {"device": "cpu"}}).subset is None


def test_no_result_is_replaced_without_overwrite_and_nothing_is_measured(tmp_path, capsys, monkeypatch):
    import neuroaikit.energy.runs as energy_runs

    a = make_run(tmp_path / "a", "cnn", TINY)
    b = make_run(tmp_path / "b", "cnn", TINY)
    stored = b.path / "results" / "energy.json"
    stored.parent.mkdir()
    stored.write_text('{"finished": "earlier result"}')
    before = stored.stat().st_mtime_ns

    def must_not_run(*args, **kwargs):
        raise AssertionError("measured although the job should have been refused")

    with monkeypatch.context() as patch:  # refused before the data are loaded or any run measured
        patch.setattr(energy_runs, "_load_test", must_not_run)
        patch.setattr(energy_runs, "measure", must_not_run)
        started = time.perf_counter()
        code = main(["energy", str(a.path), str(b.path)])
        elapsed = time.perf_counter() - started
    assert code == 2 and elapsed < 5
    err = capsys.readouterr().err
    assert "--overwrite" in err and str(stored) in err and err.count("\n") == 1
    assert stored.read_text() == '{"finished": "earlier result"}' and stored.stat().st_mtime_ns == before
    assert not (a.path / "results" / "energy.json").exists()
    assert main(["energy", str(a.path), str(b.path), "--subset", "10", "--overwrite", "--quiet"]) == 0
    assert EnergyResult.load(b).n_samples == 10 and EnergyResult.load(a).n_samples == 10


@pytest.mark.gpu  # its GPU half runs under make test-gpu
def test_energy_runs_through_the_execution_layer(tmp_path):
    """CPU always; on CUDA too when a GPU is there: the operation counts of the same model on the
    same images agree (dense exactly; effective up to the few activations that TF32 convolutions
    move across zero)."""
    torch.manual_seed(0)
    a = make_run(tmp_path / "a", "cnn", {**SHAPE, "channels": [4, 8], "hidden": 16})
    config = EnergyConfig(subset=30, batch_size=7, execution=ExecutionConfig(device="cpu", threads=1))
    (on_cpu,) = energy_for_runs([a.path], config, progress=silent())
    assert on_cpu.execution["device"] == "cpu" and on_cpu.execution["threads"] == 1
    assert on_cpu.this.n_samples == 30 and 0 <= on_cpu.this.accuracy <= 1
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: the CPU half ran")
    (on_gpu,) = energy_for_runs([a.path], config.replace(execution=ExecutionConfig(device="cuda")),
                                overwrite=True, progress=silent())
    assert on_gpu.execution["device"].startswith("cuda")
    cpu_ops, gpu_ops = on_cpu.this.SynapticOperations, on_gpu.this.SynapticOperations
    assert gpu_ops.Dense == cpu_ops.Dense
    assert gpu_ops.Effective_MACs == pytest.approx(cpu_ops.Effective_MACs, rel=1e-2)
    assert on_gpu.this.accuracy == pytest.approx(on_cpu.this.accuracy, abs=2 / 30)


def test_a_noisy_model_gives_the_same_figures_on_every_call_and_the_seed_is_used(tmp_path):
    spec = model_spec("mlp", {**SHAPE, "hidden": [16]}, noise={"relu1": "gaussian:1.0,rectify"})
    model = build_from_spec(spec)

    def measured(seed: int) -> dict:
        run = Run(tmp_path / f"run{len(list(tmp_path.iterdir()))}")
        run.path.mkdir(parents=True)
        run.save_model(model, spec)
        run.save_metrics({"dataset": "digits", "model": "mlp"})
        (result,) = energy_for_runs([run.path], EnergyConfig(subset=40, seed=seed), progress=silent())
        figures = result.to_dict()["this"]
        return {k: v for k, v in figures.items() if k not in ("run", "measure_time_s")} | {"seed": result.seed}

    first, again, other = measured(0), measured(0), measured(1)
    assert first == again and first["seed"] == 0
    assert first["ActivationSparsity"] != other["ActivationSparsity"] and first["ActivationSparsity"] > 0


def test_a_compared_run_retrained_or_removed_since_is_marked_in_the_report(tmp_path):
    """Run b retrained with --overwrite after `energy a b`: a's report still listed b's old accuracy
    and operations as if they were b's."""
    import shutil

    from neuroaikit.report import build_report

    torch.manual_seed(0)
    a, b = make_run(tmp_path / "a", "cnn", TINY), make_run(tmp_path / "b", "cnn", TINY)
    energy_for_runs([a.path, b.path], EnergyConfig(subset=20), progress=silent())
    results = [EnergyResult.load(run) for run in (a, b)]
    assert results[0].measurement_id == results[1].measurement_id is not None
    assert [row.path for row in results[0].comparison] == [str(a.path.resolve()), str(b.path.resolve())]
    assert "changed since" not in open(build_report(str(a.path)), encoding="utf-8").read()
    (b.path / "results" / "energy.json").unlink()  # as `train --overwrite` leaves b
    text = open(build_report(str(a.path)), encoding="utf-8").read()
    assert "<td>b (changed since)</td>" in text and "<td>a</td>" in text
    assert f"{b.path.resolve()} has been measured again, retrained or replaced since" in text
    shutil.rmtree(b.path)
    assert f"b is no longer at {b.path.resolve()}" in open(build_report(str(a.path)), encoding="utf-8").read()


def test_compared_runs_moved_together_or_of_one_name_are_matched_by_place(tmp_path):
    """A project copied elsewhere marked every row "gone", this run's own included; two compared
    runs both called m were both marked when one of them was measured again."""
    import shutil

    from neuroaikit.report import build_report

    torch.manual_seed(0)
    first, second = make_run(tmp_path / "p" / "g1" / "m", "cnn", TINY), make_run(tmp_path / "p" / "g2" / "m", "cnn", TINY)
    energy_for_runs([first.path, second.path], EnergyConfig(subset=20), progress=silent())
    shutil.copytree(tmp_path / "p", tmp_path / "copy")  # a copy measured again beside the original
    shutil.move(tmp_path / "p", tmp_path / "moved")
    for root in ("moved", "copy"):
        here = tmp_path / root / "g1" / "m"
        assert "changed since" not in open(build_report(str(here)), encoding="utf-8").read()
        energy_for_runs([tmp_path / root / "g2" / "m"], EnergyConfig(subset=20), progress=silent(), overwrite=True)
        text = open(build_report(str(here)), encoding="utf-8").read()
        assert text.count("<td>m (changed since)</td>") == 1 and "<td>m</td>" in text


def test_a_result_another_job_wrote_meanwhile_does_not_stop_the_others_being_saved(tmp_path, monkeypatch):
    """With `energy r1 r2 r3` and r2's result written by another job meanwhile, r3 got nothing."""
    from neuroaikit.energy import runs as energy_runs
    from neuroaikit.errors import StorageError

    torch.manual_seed(0)
    r1, r2, r3 = (make_run(tmp_path / name, "cnn", TINY) for name in ("r1", "r2", "r3"))
    real = energy_runs.measure

    def another_job_writes_r2(*args, **kwargs):
        if not (r2.path / "results" / "energy.json").exists():
            (r2.path / "results").mkdir(exist_ok=True)
            (r2.path / "results" / "energy.json").write_text('{"another": "job"}')
        return real(*args, **kwargs)

    monkeypatch.setattr(energy_runs, "measure", another_job_writes_r2)
    with pytest.raises(StorageError, match=r"^1 of 3 results not saved in place: .*r2/results/energy.json was written"):
        energy_for_runs([r1.path, r2.path, r3.path], EnergyConfig(subset=10), progress=silent())
    assert EnergyResult.load(r1) is not None and EnergyResult.load(r3) is not None
    assert (r2.path / "results" / "energy.json").read_text() == '{"another": "job"}'
    assert len(list((r2.path / "results").glob("energy.json.conflict-*"))) == 1
