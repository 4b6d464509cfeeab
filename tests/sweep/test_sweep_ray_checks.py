"""Where trials run on Ray: CPUs or GPUs per trial that no node has are refused before anything is
created (Ray would wait forever); a trial that needs CUDA needs gpus_per_trial on Ray (the serial
backend uses this machine's GPU); a trial whose worker died counts the time it took; --workers
says what its default is with --address. No Ray is started: a stand-in lists the nodes."""

from __future__ import annotations

import argparse
import contextlib
import json
import time
import types

import pytest
import torch

import neuroaikit.sweep.runner as runner
from neuroaikit.errors import ConfigError
from neuroaikit.progress import silent
from neuroaikit.sweep import SweepSpec, plan_sweep, run_sweep
from neuroaikit.sweep.runner import TrialTask, check_local_gpus, check_ray_resources

BASE = {"dataset": "digits", "model": "mlp", "epochs": 1, "train_subset": 200, "test_subset": 100}


def train_spec(base: dict | None = None, **more) -> SweepSpec:
    return SweepSpec.from_dict({"job": "train", "base": {**BASE, **(base or {})}, "grid": {"seed": [0]}, **more})


def cluster(*nodes: dict, dead: tuple[dict, ...] = ()) -> types.SimpleNamespace:
    """A stand-in for the ``ray`` module: ``nodes()`` as Ray lists them (alive and dead nodes)."""
    listed = [{"Alive": True, "Resources": r} for r in nodes] + [{"Alive": False, "Resources": r} for r in dead]
    return types.SimpleNamespace(nodes=lambda: listed)


# -- CPUs and GPUs per trial against the cluster's nodes ---------------------------------------------


def test_cpus_per_trial_beyond_every_node_is_refused():
    check_ray_resources(train_spec(cpus_per_trial=2), cluster({"CPU": 2.0}))
    with pytest.raises(ConfigError, match=r"^cpus_per_trial is 2 but the largest node of the Ray cluster has 1 "
                                          r"CPU\(s\): no trial could be scheduled; set cpus_per_trial to at most 1$"):
        check_ray_resources(train_spec(cpus_per_trial=2), cluster({"CPU": 1.0}))
    # two nodes of one CPU are not a node of two, and a dead node gives nothing
    with pytest.raises(ConfigError, match=r"cpus_per_trial is 4 but the largest node .* has 2 CPU"):
        check_ray_resources(train_spec(cpus_per_trial=4), cluster({"CPU": 1.0}, {"CPU": 2.0}, dead=({"CPU": 8.0},)))


def test_cpus_and_gpus_per_trial_must_fit_on_the_same_node():
    nodes = cluster({"CPU": 8.0}, {"CPU": 1.0, "GPU": 1.0})
    check_ray_resources(train_spec(cpus_per_trial=1, gpus_per_trial=1), nodes)
    with pytest.raises(ConfigError, match=r"^no node of the Ray cluster has both 2 CPU\(s\) and 1.0 GPU\(s\) for a "
                                          r"trial \(cpus_per_trial, gpus_per_trial\)"):
        check_ray_resources(train_spec(cpus_per_trial=2, gpus_per_trial=1), nodes)


def test_a_sweep_on_a_ray_too_small_for_a_trial_fails_before_anything_is_created(tmp_path, monkeypatch):
    @contextlib.contextmanager
    def small_ray(spec, workers, address):  # a Ray already started in this process with one CPU
        yield cluster({"CPU": 1.0})

    monkeypatch.setattr(runner, "ray_session", small_ray)
    out = tmp_path / "sweep"
    with pytest.raises(ConfigError, match=r"^cpus_per_trial is 2 but the largest node of the Ray cluster has 1 CPU"):
        run_sweep(train_spec(cpus_per_trial=2), out, backend="ray", progress=silent(), build_html=False)
    assert not out.exists()


# -- a trial that needs CUDA on Ray needs gpus_per_trial ----------------------------------------------


@pytest.mark.parametrize("execution, needs", [({"device": "cuda"}, "device 'cuda'"),
                                              ({"device": "cuda:1"}, "device 'cuda:1'"),
                                              ({"device": "auto", "precision": "16-mixed"}, "precision '16-mixed'")])
def test_a_trial_needing_cuda_on_ray_without_gpus_per_trial_is_refused(tmp_path, monkeypatch, execution, needs):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # planning only: nothing computes
    spec = train_spec({"execution": execution})
    plan = plan_sweep(spec, tmp_path / "sweep")
    check_local_gpus(plan, "serial", None)  # one trial at a time on this machine's GPU
    for address in (None, "auto"):
        with pytest.raises(ConfigError, match=rf"^trial 'seed=0': {needs} needs a CUDA GPU but gpus_per_trial is 0, "
                                              rf"so Ray would reserve none .*; set gpus_per_trial"):
            check_local_gpus(plan, "ray", address)
    check_local_gpus(plan_sweep(train_spec({"execution": execution}, gpus_per_trial=1), tmp_path / "sweep"), "ray",
                     None)


def test_the_sweep_and_the_dry_run_refuse_a_cuda_trial_on_ray_without_gpus_per_trial(tmp_path, monkeypatch,
                                                                                      capsys):
    from neuroaikit.cli.main import main

    def no_ray(*args):
        raise AssertionError("Ray started before the check")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(runner, "ray_session", no_ray)
    spec = train_spec({"execution": {"device": "cuda"}})
    out = tmp_path / "sweep"
    with pytest.raises(ConfigError, match="needs a CUDA GPU but gpus_per_trial is 0"):
        run_sweep(spec, out, backend="ray", progress=silent(), build_html=False)
    file = tmp_path / "grid.json"
    file.write_text(json.dumps(spec.to_dict()))
    assert main(["sweep", str(file), "--out", str(out), "--backend", "ray", "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: trial 'seed=0': device 'cuda' needs a CUDA GPU"), err
    assert not out.exists()


# -- a dead worker -------------------------------------------------------------------------------------


def test_a_trial_whose_ray_worker_died_counts_the_time_since_it_was_submitted():
    class DeadWorkers:  # a stand-in for ``ray`` whose every worker dies after 0.2 s
        def remote(self, function):
            return types.SimpleNamespace(options=lambda **_: types.SimpleNamespace(remote=lambda task: object()))

        def wait(self, refs, num_returns):
            time.sleep(0.2)
            return refs[:num_returns], refs[num_returns:]

        def get(self, ref):
            raise RuntimeError("the worker died\nmore lines")

    task = TrialTask(name="seed=0", job="train", config={}, out="", action="run", overwrite=False, steps=[])
    outcomes: list = []
    runner._run_ray(DeadWorkers(), [task], outcomes.append, train_spec(), None)
    [outcome] = outcomes
    assert (outcome.status, outcome.error_kind) == ("failed", "internal")
    assert outcome.error == "the Ray worker failed (RuntimeError: the worker died)"
    assert outcome.seconds >= 0.2


# -- the command line ------------------------------------------------------------------------------------


def test_the_workers_help_says_its_default_with_a_cluster_address():
    from neuroaikit.cli import cmd_sweep

    parser = argparse.ArgumentParser()
    cmd_sweep.add_arguments(parser)
    [workers] = [a for a in parser._actions if "--workers" in a.option_strings]
    assert "cpus_per_trial" in workers.help and "with --address, no limit but the cluster's" in workers.help
