"""benchmarks/continual.py on real MNIST at a few iterations: its Ray path gives the in-process
numbers, options reach the runs, a rerun with the same --out resumes, bad input exits 2."""

import dataclasses
import json
from pathlib import Path

import pytest
from benchmark_modules import load_benchmark

continual_benchmark = load_benchmark("continual", "continual_benchmark")


def _run(shared_data, tmp_path, name, *extra):
    out = tmp_path / f"{name}.json"
    code = continual_benchmark.main(["--data-dir", str(shared_data), "--iters", "10", "--seeds", "0",
                                     "--strategies", "finetune", "ewc", "--scenarios", "domain",
                                     "--strengths", "2019", "--json", str(out), *extra])
    assert code == 0
    return json.loads(out.read_text())


@pytest.mark.slow  # ~25 s of Ray start-up and runs; `make test-slow`, which CI runs
def test_ray_workers_give_the_in_process_numbers_and_resume(shared_data, tmp_path):
    pytest.importorskip("ray")
    serial = _run(shared_data, tmp_path, "serial")
    sweep = tmp_path / "sweep"
    parallel = _run(shared_data, tmp_path, "ray", "--workers", "2", "--out", str(sweep))
    assert [r["average_accuracy_pct"] for r in parallel["rows"]] == [r["average_accuracy_pct"] for r in serial["rows"]]
    ewc = next(r for r in parallel["rows"] if r["strategy"] == "ewc")
    assert ewc["strategy_params"]["lambda_"] == 1e6 and ewc["strategy_params"]["fisher_labels"] == "predicted"
    assert parallel["workers"] == 2 and parallel["strengths"] == "2019"
    again = _run(shared_data, tmp_path, "again", "--workers", "2", "--out", str(sweep))
    assert [r["wall_time_s"] for r in again["rows"]] == [None, None]  # both finished before: skipped
    assert again["rows"][0]["average_accuracy_pct"] == parallel["rows"][0]["average_accuracy_pct"]
    # each run's own training time survives the resume
    assert [r["train_time_s"] for r in again["rows"]] == [r["train_time_s"] for r in parallel["rows"]]
    assert all(t > 0 for t in (r["train_time_s"] for r in again["rows"]))


@pytest.mark.slow  # ~20 s of benchmark runs; `make test-slow`, which CI runs
def test_a_resumed_run_reports_no_wall_time_of_its_own(shared_data, tmp_path, monkeypatch):
    pytest.importorskip("ray")
    real_run_sweep = continual_benchmark.run_sweep

    def ewc_resumed(*args, **kwargs):  # as if an earlier call had run EWC's first tasks
        summary = real_run_sweep(*args, **kwargs)
        summary.rows = [dataclasses.replace(row, status="resumed") if row.name.startswith("domain-ewc-") else row
                        for row in summary.rows]
        return summary

    monkeypatch.setattr(continual_benchmark, "run_sweep", ewc_resumed)
    rows = _run(shared_data, tmp_path, "resumed", "--workers", "2", "--out", str(tmp_path / "sweep"))["rows"]
    wall = {r["strategy"]: r["wall_time_s"] for r in rows}
    assert wall["ewc"] is None and wall["finetune"] > 0
    assert all(r["train_time_s"] > 0 for r in rows)


def test_bad_input_exits_2_before_any_run(shared_data, tmp_path, capsys):
    code = continual_benchmark.main(["--data-dir", str(shared_data), "--iters", "10", "--seeds", "0",
                                     "--strategies", "finetune", "nosuch", "--json", str(tmp_path / "x.json")])
    assert code == 2 and "unknown strategy 'nosuch'" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


def test_a_setting_unused_in_one_scenario_exits_2_before_the_header(shared_data, tmp_path, capsys):
    """LwF's heads apply to task-IL only: the class-IL run would have ignored it, after the task-IL one."""
    code = continual_benchmark.main(["--data-dir", str(shared_data), "--iters", "10", "--seeds", "0",
                                     "--strategies", "lwf", "--scenarios", "task", "class", "--set", "heads=sampled",
                                     "--json", str(tmp_path / "x.json")])
    captured = capsys.readouterr()
    assert code == 2 and "heads applies only to the task-incremental scenario" in captured.err
    assert captured.out == "" and not (tmp_path / "x.json").exists()


def test_a_missing_data_folder_exits_2_before_the_header(tmp_path, capsys):
    code = continual_benchmark.main(["--data-dir", str(tmp_path / "nowhere"), "--quick", "--strategies", "finetune"])
    captured = capsys.readouterr()
    assert code == 2 and "data folder not found" in captured.err and captured.out == ""


def test_a_setting_out_of_range_exits_2_before_the_header(shared_data, tmp_path, capsys):
    code = continual_benchmark.main(["--data-dir", str(shared_data), "--iters", "10", "--seeds", "0",
                                     "--strategies", "xdg", "--scenarios", "task", "--set", "gating_prop=1.5",
                                     "--json", str(tmp_path / "x.json")])
    captured = capsys.readouterr()
    assert code == 2 and "gating_prop must be a number in [0, 1), got 1.5" in captured.err and captured.out == ""
    assert not (tmp_path / "x.json").exists()


@pytest.mark.slow  # ~25 s of benchmark runs; `make test-slow`, which CI runs
def test_set_overrides_the_strengths_in_every_run_and_names_the_trials(shared_data, tmp_path):
    pytest.importorskip("ray")
    sweep = tmp_path / "sweep"
    figures = _run(shared_data, tmp_path, "set", "--set", "lambda=7", "--workers", "2", "--out", str(sweep))
    ewc = next(r for r in figures["rows"] if r["strategy"] == "ewc")
    assert ewc["strategy_params"]["lambda_"] == 7 and ewc["strategy_params"]["fisher_labels"] == "predicted"
    stored = json.loads((sweep / "trials" / "domain-ewc-seed0-2019-lambda=7" / "config.json").read_text())
    assert stored["strategy_params"] == {"lambda_": 7, "fisher_labels": "predicted"}
    assert figures["settings"] == {"lambda": 7}
    assert sorted(p.name for p in (sweep / "trials").iterdir()) == ["domain-ewc-seed0-2019-lambda=7",
                                                                     "domain-finetune-seed0-2019"]


def test_table_reprints_recorded_figures_with_their_spread(tmp_path, capsys):
    row = {"scenario": "domain", "strategy": "si", "average_accuracy_pct": [60.0, 70.0, 80.0], "published_pct": 65.36,
           "wall_time_s": None, "forgetting": 0.4, "backward_transfer": -0.4, "extra_forward_ratio": 0.0,
           "stored_floats": 10}  # as pages written before runs kept their training time
    page = tmp_path / "page.json"
    page.write_text(json.dumps({"stamp": {}, "figures": {"rows": [row]}}))  # a results page's data
    assert continual_benchmark.main(["--table", str(page)]) == 0
    printed = capsys.readouterr().out.splitlines()[1].split()
    # mean 70, s.d. 10, standard error 10 / sqrt(3), range 60-80, 4.64 points above the published mean
    assert printed[2:8] == ["70.00", "±", "10.00", "5.77", "60.00-80.00", "65.36"] and printed[8] == "+4.6"
    assert continual_benchmark.main(["--table", str(tmp_path / "missing.json")]) == 2
    assert "is not a table" in capsys.readouterr().err


def _table(path, seeds, accs, forgetting, pad=2, strengths="2019", **row):
    row = {"benchmark": "permuted-mnist", "scenario": "task", "strategy": "xdg", "iters": 5000, "n_tasks": 10,
           "seeds": seeds, "average_accuracy_pct": accs, "published_pct": 97.18, "forgetting": forgetting,
           "backward_transfer": -forgetting, "forward_transfer": 0.0, "extra_forward_ratio": 0.0,
           "stored_floats": 0, "wall_time_s": 100.0, "train_time_s": 90.0,
           "accuracy_matrices": [[[acc / 100]] for acc in accs],
           "strategy_params": {"gating_prop": 0.55, "base": "finetune", "base_params": {}}, **row}
    path.write_text(json.dumps({"stamp": {}, "figures": {"rows": [row], "pad": pad, "strengths": strengths}}))
    return str(path)


def test_table_pools_the_seeds_of_separate_runs_row_by_row(tmp_path, capsys):
    # seed 0 written before XdG had its exact_count and before_bias settings: read as their defaults
    first = _table(tmp_path / "seed0.json", [0], [94.0], 0.04)
    later = _table(tmp_path / "seeds12.json", [2, 1], [90.0, 92.0], 0.01, strategy_params={
        "gating_prop": 0.55, "base": "finetune", "base_params": {}, "exact_count": False, "before_bias": False})
    out = tmp_path / "pooled.json"
    assert continual_benchmark.main(["--table", first, later, "--json", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("pooled from 2 tables") and lines[2].split()[2:4] == ["92.00", "±"]
    pooled = json.loads(out.read_text())
    assert pooled["strengths"] == "2019" and pooled["pooled_from"] == [first, later]
    (row,) = pooled["rows"]
    assert row["seeds"] == [0, 1, 2] and row["average_accuracy_pct"] == [94.0, 92.0, 90.0]
    assert row["accuracy_matrices"] == [[[0.94]], [[0.92]], [[0.90]]]
    assert row["mean_pct"] == pytest.approx(92.0) and row["sd_pct"] == pytest.approx(2.0)
    assert row["difference_pp"] == pytest.approx(92.0 - 97.18)
    assert row["forgetting"] == pytest.approx((0.04 + 2 * 0.01) / 3)  # a mean over seeds, not over tables
    # tables run under different --strengths: rows pool on their own settings, the label says "mixed"
    toolkit = _table(tmp_path / "seed3.json", [3], [91.0], 0.02, strengths="toolkit")
    assert continual_benchmark.main(["--table", first, toolkit, "--json", str(out)]) == 0
    capsys.readouterr()
    mixed = json.loads(out.read_text())
    assert mixed["strengths"] == "mixed" and mixed["rows"][0]["seeds"] == [0, 3]


def test_table_pools_rows_whose_recorded_settings_a_run_would_refuse(tmp_path, capsys):
    """A run records its resolved settings (replay: the size and the per_class it came from), which
    together would be refused as settings to run with; pooling reads them as a record."""
    recorded = {"buffer": "class-balanced", "size": 1000, "per_class": 100, "replay_batch": 128}
    tables = [_table(tmp_path / f"seed{seed}.json", [seed], [acc], 0.02, strategy="replay", scenario="class",
                     benchmark="split-mnist", strategy_params=recorded) for seed, acc in ((0, 90.0), (1, 92.0))]
    out = tmp_path / "pooled.json"
    assert continual_benchmark.main(["--table", *tables, "--json", str(out)]) == 0
    capsys.readouterr()
    (row,) = json.loads(out.read_text())["rows"]
    assert row["seeds"] == [0, 1] and row["strategy_params"] == recorded
    # a composite over such a base, one of its tables written before the base had its buffer
    # setting: the base's missing setting reads as its default, and the two tables pool
    xdg = {"gating_prop": 0.5, "base": "replay", "base_params": recorded, "exact_count": False,
           "before_bias": False, "subnetwork": None}
    older = {**xdg, "base_params": {k: v for k, v in recorded.items() if k != "buffer"}}
    tables = [_table(tmp_path / f"xdg{seed}.json", [seed], [90.0 + seed], 0.02, strategy_params=params)
              for seed, params in ((0, xdg), (1, older))]
    assert continual_benchmark.main(["--table", *tables, "--json", str(out)]) == 0
    capsys.readouterr()
    (row,) = json.loads(out.read_text())["rows"]
    assert row["seeds"] == [0, 1] and row["strategy_params"]["base_params"] == recorded


def test_table_leaves_out_the_wall_time_of_a_run_resumed_before_it_was_left_empty(tmp_path, capsys):
    # seed 0 recorded by a benchmark that still kept a resumed run's last segment: 40 s of wall
    # time for 90 s of training cannot be the whole run; it is neither printed nor pooled
    resumed = _table(tmp_path / "seed0.json", [0], [94.0], 0.04, wall_time_s=40.0)
    whole = _table(tmp_path / "seed1.json", [1], [92.0], 0.04)
    out = tmp_path / "pooled.json"
    assert continual_benchmark.main(["--table", resumed, "--json", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[-2].split()[-2:] == ["-", "90.0"]
    assert continual_benchmark.main(["--table", resumed, whole, "--json", str(out)]) == 0
    capsys.readouterr()
    (row,) = json.loads(out.read_text())["rows"]
    assert row["wall_time_s"] is None and row["train_time_s"] == pytest.approx(90.0)
    assert continual_benchmark.main(["--table", whole, "--json", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[-2].split()[-2:] == ["100.0", "90.0"]


def test_table_pools_seeds_run_on_different_devices_without_their_times(tmp_path, capsys):
    on_cpu = _table(tmp_path / "seeds01.json", [0, 1], [94.0, 92.0], 0.04)
    on_gpu = tmp_path / "seed2.json"
    page = json.loads(Path(_table(on_gpu, [2], [90.0], 0.01)).read_text())
    page["figures"]["device"] = "cuda"
    on_gpu.write_text(json.dumps(page))
    out = tmp_path / "pooled.json"
    assert continual_benchmark.main(["--table", on_cpu, str(on_gpu), "--json", str(out)]) == 0
    capsys.readouterr()
    pooled = json.loads(out.read_text())
    assert pooled["device"] == "mixed: cpu, cuda"
    (row,) = pooled["rows"]
    assert row["seeds"] == [0, 1, 2] and row["mean_pct"] == pytest.approx(92.0)
    assert row["wall_time_s"] is None and row["train_time_s"] is None


def test_table_refuses_to_pool_a_seed_twice_or_different_protocols(tmp_path, capsys):
    first = _table(tmp_path / "a.json", [0], [94.0], 0.04)
    again = _table(tmp_path / "b.json", [0, 1], [93.0, 92.0], 0.04)
    unpadded = _table(tmp_path / "c.json", [1], [93.0], 0.04, pad=0)
    assert continual_benchmark.main(["--table", first, again, "--json", str(tmp_path / "x.json")]) == 2
    assert "seed 0 of xdg (task-IL) is in more than one table" in capsys.readouterr().err
    assert continual_benchmark.main(["--table", first, unpadded]) == 2
    assert "has pad 0" in capsys.readouterr().err and not (tmp_path / "x.json").exists()
    # a run option beside --table would do nothing: said, not ignored
    assert continual_benchmark.main(["--table", first, "--seeds", "1", "2"]) == 2
    assert "--seeds would have no effect" in capsys.readouterr().err
    # given at its default value, it would still do nothing
    assert continual_benchmark.main(["--table", first, "--pad", "0", "--threads", "1"]) == 2
    assert "--pad, --threads would have no effect" in capsys.readouterr().err


def test_every_table_says_the_published_figures_are_unverified(tmp_path, capsys):
    table = _table(tmp_path / "seed0.json", [0], [94.0], 0.04)
    out = tmp_path / "again.json"
    assert continual_benchmark.main(["--table", table, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "published*" in printed.splitlines()[0]
    assert printed.splitlines()[-1] == continual_benchmark.PUBLISHED_SOURCE
    assert "not verified" in json.loads(out.read_text())["published_source"]


def test_the_step_benchmark_times_fine_tuning_first_and_every_operation(shared_data, tmp_path, capsys):
    """benchmarks/continual_step.py: fine-tuning is timed first (every ratio is to it) in each
    round, the end-of-task work apart from the steps, each elementwise operation against a
    multiply; the figures go to --json. A missing data folder is a usage error before any timing."""
    step_benchmark = load_benchmark("continual_step", "continual_step_benchmark")
    out = tmp_path / "steps.json"
    assert step_benchmark.main(["--data-dir", str(shared_data), "--strategies", "ewc", "--iters", "3",
                                "--repeats", "2", "--rounds", "2", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert [row["strategy"] for row in figures["steps"]] == ["finetune", "ewc"]
    finetune, ewc = figures["steps"]
    per_round = [a / b for a, b in zip(ewc["rounds_ms_per_step"], finetune["rounds_ms_per_step"])]
    assert len(per_round) == 2 and min(per_round) <= ewc["vs_finetune"] <= max(per_round)  # within a round
    assert ewc["end_of_task_s"] > 0  # the Fisher, timed apart from the steps
    assert figures["elementwise_vs_multiply"]["multiply"] == 1.0
    assert set(figures["elementwise_us"]) >= {"where", "tanh", "compare (>=)", "copysign"}
    assert all(cost > 0 for cost in figures["elementwise_us"].values())
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        step_benchmark.main(["--data-dir", str(tmp_path / "nowhere"), "--strategies", "si"])
    assert stop.value.code == 2 and "elementwise" not in capsys.readouterr().out

