"""Twin ensembles: the module, the rule that decides how many members ``twin fit`` fits, and
the fit's run folder, checkpoint and scores."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from neuroaikit.cli.main import main
from neuroaikit.models import build_model
from neuroaikit.neural import CortexTwin, TwinEnsemble, predict
from neuroaikit.neural.metrics import single_trial_correlation
from neuroaikit.neural.twin import (AUTO_MEMBERS_MAX, NEXT_MEMBER_MARGIN, TwinFitJob, another_member, fit_run, load_data,
                                    select_members)
from neuroaikit.errors import ConfigError
from neuroaikit.progress import Progress
from neuroaikit.runs import Run

SYN = ["--synthetic", "n_neurons=30", "--synthetic", "image_shape=[10,14]", "--synthetic", "n_train=300",
       "--synthetic", "n_validation=40", "--synthetic", "n_test_images=6", "--synthetic", "repeats=3"]
FIT = ["twin", "fit", "synthetic", *SYN, "--channels", "4", "--layers", "1", "--max-epochs", "8", "--threads", "1",
       "--no-baselines", "--no-report"]


def test_ensemble_predicts_the_mean_of_its_members_and_round_trips_through_the_model_registry():
    torch.manual_seed(0)
    members = [CortexTwin(image_shape=(1, 10, 14), n_neurons=5, hidden_channels=4, layers=1) for _ in range(3)]
    ensemble = TwinEnsemble(members).eval()
    images = torch.rand(4, 1, 10, 14)
    with torch.no_grad():
        expected = torch.stack([m.eval()(images) for m in members]).mean(0)
        assert torch.allclose(ensemble(images), expected, atol=1e-6)
    assert ensemble.sessions == members[0].sessions and ensemble.image_shape == (1, 10, 14)
    rebuilt = build_model("twin", members=3, image_shape=(1, 10, 14), n_neurons=5, hidden_channels=4, layers=1)
    assert isinstance(rebuilt, TwinEnsemble) and len(rebuilt.members) == 3
    rebuilt.load_state_dict(ensemble.state_dict())
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(images), ensemble(images))
    assert isinstance(build_model("twin", image_shape=(1, 10, 14), n_neurons=5), CortexTwin)


def test_ensemble_refuses_members_of_other_neurons():
    with pytest.raises(ValueError, match="share sessions, neurons and image shape"):
        TwinEnsemble([CortexTwin(image_shape=(1, 10, 14), n_neurons=5), CortexTwin(image_shape=(1, 10, 14), n_neurons=6)])
    with pytest.raises(ValueError, match="at least one member"):
        TwinEnsemble([])


def test_another_member_rule():
    # an explicit count is fitted whatever the validation says
    assert [another_member(3, fitted, False, 0.0, 100.0) for fitted in range(4)] == [True, True, True, False]
    # auto: always one; without a time limit only one
    assert another_member("auto", 0, False, None, 0.0)
    assert not another_member("auto", 1, True, None, 100.0)
    # auto with a budget: another while it has time to converge, none after a dropped member or at the cap
    assert another_member("auto", 1, True, NEXT_MEMBER_MARGIN * 100.0, 100.0)
    assert not another_member("auto", 1, True, NEXT_MEMBER_MARGIN * 100.0 - 1, 100.0)
    assert not another_member("auto", 2, False, 1e6, 100.0)
    assert not another_member("auto", AUTO_MEMBERS_MAX, True, 1e6, 100.0)


def test_select_members_starts_from_the_best_twin_and_keeps_only_what_helps():
    # twin 0 trained badly: the ensemble starts from twin 1, and twin 0 joins only if it helps
    ensemble = {(1, 2): 0.45, (1, 2, 3): 0.45, (0, 1, 2, 3): 0.43}
    chosen, joined = select_members([0.30, 0.44, 0.43, 0.40], lambda idx: ensemble[tuple(sorted(idx))])
    assert chosen == [1, 2, 3] and joined == {1: 0.44, 2: 0.45, 3: 0.45}
    assert select_members([0.5], lambda idx: 0.0) == ([0], {0: 0.5})


def test_members_setting_is_validated(tmp_path, capsys):
    for bad in (0, -1, "two", True, 1.5):
        with pytest.raises(ConfigError, match="members"):
            TwinFitJob.from_dict({"members": bad})
    with pytest.raises(SystemExit) as exit_:  # argparse's usage error
        main(["twin", "fit", "synthetic", "--members", "two", "--out", str(tmp_path / "o")])
    assert exit_.value.code == 2 and "--members: expected a whole number or 'auto'" in capsys.readouterr().err
    assert main(["twin", "fit", "synthetic", "--members", "0", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "members" in err[0] and not (tmp_path / "o").exists()


def _validation_r(predictions, ds):
    val = ds.tier_mask("validation")
    return float(np.mean(single_trial_correlation(ds.responses[val], predictions)))


def test_fit_with_members_writes_the_ensemble_of_those_kept(tmp_path):
    out = tmp_path / "ensemble"
    assert main([*[a for a in FIT if a != "--no-report"], "--members", "3", "--out", str(out)]) == 0
    run = Run.open(out)
    fit = run.result("twin_fit")
    members = fit["members"]
    assert [m["seed"] for m in members] == [0, 1, 2] and members[0]["kept"]
    # each member names the starts it was chosen from, as its own history does
    assert members[0]["starts"] == fit["history"][0]["starts"]
    assert all(len(m["starts"]) == 3 and m["starts"][0]["seed"] == m["seed"] for m in members)
    kept = [m for m in members if m["kept"]]
    model = run.load_model()
    # what was kept is what was saved; on this seeded fit every member raised the validation r
    assert len(kept) == 3 and isinstance(model, TwinEnsemble) and len(model.members) == 3
    assert run.model_spec["kwargs"]["members"] == 3 and run.metrics["members"] == 3
    # each kept member raised the ensemble's validation r when it joined; the highest is the run's
    scores = [m["ensemble_validation_correlation"] for m in kept]
    assert fit["ensemble_validation_correlation"] == max(scores)
    assert all(m["ensemble_validation_correlation"] is None for m in members if not m["kept"])
    job = TwinFitJob.from_dict(run.config)
    ds, _ = load_data("synthetic", None, job.synthetic)
    from neuroaikit.neural.fit import split_validation_of

    split = split_validation_of(ds, job.fit)
    mean = np.mean([predict(m, split, "validation") for m in model.members], axis=0)
    assert _validation_r(mean, split) == pytest.approx(max(scores), abs=1e-5)
    # the first member alone is scored beside the ensemble, on the test tier
    ev = run.result("twin_eval")
    assert {"twin", "first_member"} <= set(ev["models"])
    assert main(["twin", "evaluate", str(out), "--no-baselines", "--overwrite", "--no-report"]) == 0
    again = Run.open(out).result("twin_eval")
    # the same scores up to float rounding (near-zero scores make a relative tolerance too tight)
    assert again["models"]["twin"]["single_trial_correlation"] == pytest.approx(
        ev["models"]["twin"]["single_trial_correlation"], abs=1e-6)
    assert again["models"]["first_member"] == pytest.approx(ev["models"]["first_member"], abs=1e-6)
    assert "3 twins fitted, 3 kept" in (out / "report.html").read_text()


def test_one_member_is_a_plain_twin(tmp_path):
    out = tmp_path / "one"
    assert main([*FIT, "--out", str(out)]) == 0  # auto, no time limit: one twin
    run = Run.open(out)
    assert isinstance(run.load_model(), CortexTwin) and "members" not in run.model_spec["kwargs"]
    assert len(run.result("twin_fit")["members"]) == 1 and "first_member" not in run.result("twin_eval")["models"]


class _StopAt(Progress):
    """Interrupts the job at the first message containing ``text`` (a kill mid-fit)."""

    def __init__(self, text: str):
        super().__init__(enabled=False, echo=None)
        self.text = text

    def message(self, text: str) -> None:
        if self.text in text:
            raise KeyboardInterrupt
        super().message(text)


def test_an_interrupted_ensemble_resumes_mid_member_to_the_same_weights(tmp_path):
    job = TwinFitJob.from_dict({"data": "synthetic", "baselines": False, "members": 2,
                                "synthetic": {"cortex": {"n_neurons": 12, "image_shape": [10, 14]},
                                              "sample": {"n_train": 150, "n_validation": 20, "n_test_images": 4,
                                                         "repeats": 3}},
                                "fit": {"max_epochs": 3, "model": {"hidden_channels": 4, "layers": 1},
                                        "execution": {"threads": 1}}})
    straight = fit_run(job, tmp_path / "straight")
    with pytest.raises(KeyboardInterrupt):
        fit_run(job, tmp_path / "resumed", progress=_StopAt("twin member 2 epoch 2"))
    checkpoint = torch.load(tmp_path / "resumed.partial" / "checkpoint.pt", weights_only=True)
    # killed mid-member: the first twin finished, the second's state after its first epoch
    assert len(checkpoint["members_done"]) == 1 and checkpoint["member_state"]["epoch"] == 1
    resumed = fit_run(job, tmp_path / "resumed", resume=True)
    first = json.loads((straight.path / "results" / "twin_fit.json").read_text())["members"]
    second = json.loads((resumed.path / "results" / "twin_fit.json").read_text())["members"]
    assert [m["kept"] for m in first] == [m["kept"] for m in second] and len(second) == 2
    a, b = straight.load_model().state_dict(), resumed.load_model().state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_member_cut_short_by_the_deadline_is_scored_and_left_out_when_it_would_lower_the_ensemble(tmp_path,
                                                                                                    monkeypatch):
    # `--members auto` starts a second twin when half the longest fit's time is left; here its
    # deadline has already passed when it starts (as when the first twin's fit ran long), so it
    # trains on no batch at all, ends by the time limit, and must not join the first twin
    from neuroaikit.neural import twin as twin_module

    real_fit_twin = twin_module.fit_twin
    deadlines = {}

    def fit_twin(*args, name, deadline, **kwargs):
        deadlines[name] = deadline
        if name == "twin member 2":
            deadline = twin_module.time.monotonic()
        return real_fit_twin(*args, name=name, deadline=deadline, **kwargs)

    monkeypatch.setattr(twin_module, "fit_twin", fit_twin)
    out = tmp_path / "cut"
    assert main([*FIT, "--time-limit", "3600", "--out", str(out)]) == 0
    assert set(deadlines) == {"twin", "twin member 2"} and all(d is not None for d in deadlines.values())
    run = Run.open(out)
    first, second = run.result("twin_fit")["members"]
    assert first["kept"] and first["stopped_by"] in ("early_stopping", "max_epochs")
    assert second["stopped_by"] == "time_limit" and second["epochs"] == 1 and not second["kept"]
    assert second["ensemble_validation_correlation"] is None
    assert second["best_validation_correlation"] < first["best_validation_correlation"]
    # the run's model is the first twin alone, and nothing after the dropped member was fitted
    assert isinstance(run.load_model(), CortexTwin) and "first_member" not in run.result("twin_eval")["models"]
