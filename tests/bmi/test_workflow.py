"""``neuroaikit bmi`` end to end on one SSVEP subject: run folder, typed result, report."""

from __future__ import annotations

import pickle

import pytest

import neuroaikit.bmi.workflow as workflow
from neuroaikit.bmi.results import BMIResult
from neuroaikit.errors import ConfigError, DataError
from neuroaikit.cli.main import main
from neuroaikit.runs import Run


def test_bmi_run_folder_and_report(eeg_dir, tmp_path, capsys, monkeypatch):

    read = []
    real_load = workflow.load_dataset
    monkeypatch.setattr(workflow, "load_dataset", lambda config, recipe=None: read.append(recipe) or real_load(
        config, recipe))
    out = tmp_path / "ssvep"
    code = main(["bmi", "--data-dir", str(eeg_dir), "--decoders", "cca", "--folds", "3", "--robustness",
                 "--snrs", "0", "--channels-lost", "1", "--eps-uv", "50", "--attack-steps", "3", "--windows", "1",
                 "--permutations", "3", "--threads", "1", "--quiet", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    result = BMIResult.load(Run(out))
    row = result.decoders[0]
    assert row.name == "cca" and row.n_trials == 64 and 0.25 < row.accuracy <= 1
    assert row.interval[0] < row.accuracy < row.interval[1] and row.n_permutations == 3
    assert set(row.robustness) >= {"clean", "noise", "channels_lost", "electrode_shift", "apgd"}
    assert row.robustness["apgd"]["50"] <= row.robustness["clean"]
    assert row.pseudo_online[0]["window_s"] == 1.0
    assert row.pseudo_online[0]["latency_s"] >= 3.0  # epochs start 2 s after the cue
    # each recipe read once: the offline one for the evaluation, the causal one for the windows
    assert [r.causal for r in read] == [False, True]
    assert row.robustness["noise_model"] == "sensor" and row.itr_selection_s == 4.0 and row.roc_auc is None
    assert result.published["cca"] == 25.40 and result.published["metric"] == "accuracy"
    assert "Brain-machine interface decoding" in (out / "report.html").read_text()


def test_robustness_follows_the_scheme():
    """loso perturbs every trial of the held-out subject with a decoder fitted on the others;
    the other schemes split each subject 75/25, stratified."""
    import numpy as np

    from neuroaikit.bmi.epochs import EpochsDataset
    from neuroaikit.bmi.workflow import _robustness_splits

    subject = np.repeat([1, 2, 3], 8)
    y = np.tile([0, 1], 12)
    ds = EpochsDataset(X=np.zeros((24, 2, 4)), y=y, classes=["a", "b"], ch_names=["C3", "C4"], sfreq=4.0,
                       subject=subject)
    subject = ds.subject  # the data set keeps subjects as strings
    for s, train, test in _robustness_splits(ds, "loso", 0):
        assert set(subject[test]) == {s} and len(test) == 8 and s not in set(subject[train])
        assert len(train) == 16
    for s, train, test in _robustness_splits(ds, "within-session", 0):
        assert set(subject[train]) == set(subject[test]) == {s} and len(test) == 2
        assert sorted(y[test]) == [0, 1] and not set(train) & set(test)
    # few trials: more than a quarter held out, so that each class is perturbed and still learnt
    four = EpochsDataset(X=np.zeros((12, 2, 4)), y=np.tile([0, 1, 2, 3], 3), classes=list("abcd"),
                         ch_names=["C3", "C4"], sfreq=4.0, subject=np.ones(12, int))
    ((_, train, test),) = _robustness_splits(four, "within-session", 0)
    assert sorted(four.y[test]) == [0, 1, 2, 3] and sorted(set(four.y[train])) == [0, 1, 2, 3]
    too_few = EpochsDataset(X=np.zeros((5, 2, 4)), y=np.array([0, 0, 1, 1, 2]), classes=list("abc"),
                            ch_names=["C3", "C4"], sfreq=4.0, subject=np.ones(5, int))
    with pytest.raises(DataError, match=r"subject 1: class 'c' has 1 trial; the robustness table needs 2 of each"):
        list(_robustness_splits(too_few, "within-session", 0))


def test_bmi_refuses_torchrun(tmp_path, capsys, monkeypatch):
    """Under torchrun every rank would run the whole job into the same folder: refused before anything."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    out = tmp_path / "ssvep"
    assert main(["bmi", "--data-dir", str(tmp_path), "--quiet", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("error: bmi runs in one process (its decoders are fitted one after another); start it without "
                   "torchrun (it has 2 processes)")
    assert list(tmp_path.iterdir()) == []


def test_loso_does_not_ask_for_trials_per_fold(monkeypatch):
    """Folds are within-session k-fold only: under loso a label with fewer trials than --folds
    (but more than one) is decoded, not refused."""
    import numpy as np

    from neuroaikit.bmi.epochs import EpochsDataset
    from neuroaikit.progress import silent

    rng = np.random.default_rng(0)
    y = np.tile([0, 1], 12)
    y[[0, 12]] = 2
    ds = EpochsDataset(X=rng.normal(size=(24, 3, 64)), y=y, classes=["a", "b", "c"], sfreq=32.0,
                       ch_names=["O1", "Oz", "O2"], subject=np.repeat([1, 2], 12))
    monkeypatch.setattr(workflow, "load_dataset", lambda config, recipe=None: ds)
    config = workflow.BMIConfig(subjects=[1, 2], decoders=["mdm"], scheme="loso", folds=5)
    result = workflow.decode(config, progress=silent())
    assert result.decoders[0].n_trials == 24


def test_decode_reports_each_fold_permutation_and_robustness_subject(monkeypatch):
    """A deep decoder under loso with robustness runs for most of an hour: progress names the
    decoder and counts its folds, permutations and robustness subjects as they finish."""
    import io

    import numpy as np

    from neuroaikit.bmi.epochs import EpochsDataset
    from neuroaikit.progress import Progress

    rng = np.random.default_rng(0)
    ds = EpochsDataset(X=rng.normal(size=(36, 3, 64)), y=np.tile([0, 1], 18), classes=["a", "b"], sfreq=32.0,
                       ch_names=["O1", "Oz", "O2"], subject=np.repeat([1, 2, 3], 12))
    monkeypatch.setattr(workflow, "load_dataset", lambda config, recipe=None: ds)
    config = workflow.BMIConfig(subjects=[1, 2, 3], decoders=["mdm"], scheme="loso", permutations=2,
                                robustness=True, snrs_db=[0], channels_lost=[1], eps_uv=[], noise_model="input")
    stream = io.StringIO()
    workflow.decode(config, progress=Progress(stream=stream, interactive=False, interval=0, echo=None))
    lines = stream.getvalue().splitlines()
    assert [line.split(";")[0] for line in lines] == (
        [f"mdm: loso folds: {k}/3 folds ({100 * k / 3:.0f}%)" for k in (1, 2, 3)]
        + [f"mdm: permutations: {k}/2 permutations ({50 * k}%)" for k in (1, 2)]
        + [f"mdm: robustness: {k}/3 subjects ({100 * k / 3:.0f}%)" for k in (1, 2, 3)]
        + ["decoders: 1/1 decoders (100%)"])


def test_loso_robustness_reuses_the_fold_decoders(monkeypatch):
    """Under loso the robustness splits are the cross-validation folds: each held-out subject is
    perturbed with the decoder its fold fitted (one fit per subject, not two), so the robustness
    table's clean accuracy is the loso accuracy itself for a deterministic decoder."""
    import numpy as np

    from neuroaikit.bmi.epochs import EpochsDataset
    from neuroaikit.bmi.evaluation import cross_validate
    from neuroaikit.progress import silent

    rng = np.random.default_rng(1)
    y = np.tile([0, 1], 18)
    X = rng.normal(size=(36, 3, 64)) * (1 + y)[:, None, None]  # class 1 has twice the amplitude
    ds = EpochsDataset(X=X, y=y, classes=["a", "b"], sfreq=32.0, ch_names=["O1", "Oz", "O2"],
                       subject=np.repeat([3, 1, 2], 12))
    monkeypatch.setattr(workflow, "load_dataset", lambda config, recipe=None: ds)
    fits = []
    real = workflow._decoder_for

    def counting(*args, **kwargs):
        decoder = real(*args, **kwargs)
        fit = type(decoder).fit
        monkeypatch.setattr(type(decoder), "fit", lambda self, X, y: fits.append(len(X)) or fit(self, X, y))
        return decoder

    monkeypatch.setattr(workflow, "_decoder_for", counting)
    config = workflow.BMIConfig(subjects=[1, 2, 3], decoders=["mdm"], scheme="loso", robustness=True,
                                snrs_db=[0], channels_lost=[1], eps_uv=[], noise_model="input")
    row = workflow.decode(config, progress=silent()).decoders[0]
    assert fits == [24, 24, 24]
    assert row.robustness["clean"] == np.mean(list(row.per_subject.values()))
    pred = cross_validate(workflow.make_decoder("mdm", ds), ds, "loso", keep_models=True)
    assert [set(pred.subject[pred.fold == k]) for k in range(3)] == [{"1"}, {"2"}, {"3"}]
    assert list(workflow.loso_fold_models(ds, pred)) == ["1", "2", "3"]


@pytest.mark.parametrize("settings, message", [
    ({"eps_uv": [1.0]}, "eps_uv applies only with robustness"),
    ({"noise_model": "input"}, "noise_model applies only with robustness"),
    ({"deep_epochs": 50}, "deep_epochs applies only to the deep decoders (eegnet, shallow)"),
    ({"robustness": True, "eot": 20}, "eot applies only to a stochastic decoder: a deep decoder with deep_noise"),
    ({"decoders": ["eegnet"], "robustness": True, "eot": 20},
     "eot applies only to a stochastic decoder: a deep decoder with deep_noise"),
    ({"robustness": True, "eps_uv": [], "attack_steps": 100},
     "attack_steps applies only to the attack, and eps_uv holds no budget above 0"),
    ({"robustness": True, "eps_uv": [0.0], "eot": 5},
     "eot applies only to the attack, and eps_uv holds no budget above 0"),
    ({"subjects": [1, 2], "scheme": "loso", "folds": 3},
     "folds applies only to scheme within-session or windows_s (scheme loso holds out whole groups)"),
])
def test_the_api_refuses_a_changed_setting_the_run_would_not_use(settings, message):
    """The CLI refused these options; the Python API took them silently, and the saved config then
    read as if, say, EOT 20 had shaped an attack that used no EOT at all."""
    with pytest.raises(ConfigError) as refused:
        workflow.BMIConfig(**settings)
    assert str(refused.value) == message
    # the error survives pickling (a Ray worker's): type, field and wording kept
    copy = pickle.loads(pickle.dumps(refused.value))
    assert isinstance(copy, workflow.UnusedSettingError) and copy.field == refused.value.field
    assert copy.causes == refused.value.causes and refused.value.causes
    assert str(copy) == copy.describe() == message
    # and it can still be spelled as the CLI spells it
    assert copy.describe(lambda field: "--" + field) == refused.value.describe(lambda field: "--" + field)
    assert copy.describe(lambda field: "--" + field).startswith("--" + copy.field + " ")


def test_the_api_accepts_the_same_settings_where_they_are_used():
    workflow.BMIConfig(robustness=True, eps_uv=[1.0], noise_model="input")
    workflow.BMIConfig(decoders=["eegnet"], robustness=True, deep_noise=0.5, eot=20, deep_epochs=50)
    workflow.BMIConfig(subjects=[1, 2], scheme="loso", folds=3, windows_s=[1.0])
    # a default written out is no change, as a saved config.json of an older run holds every field,
    # and neither is a default written as a tuple
    workflow.BMIConfig(eot=10, folds=5, scheme="loso", subjects=[1, 2], snrs_db=(10.0, 0.0, -10.0))
    workflow.BMIConfig.from_dict(workflow.BMIConfig(subjects=[1, 2], scheme="loso").to_dict())


def test_deep_dropout_reaches_the_deep_decoder(monkeypatch):
    built = []
    monkeypatch.setattr(workflow, "make_decoder", lambda name, ds, **options: built.append(options))
    config = workflow.BMIConfig(decoders=["eegnet"], deep_dropout=0.25)
    workflow._decoder_for("eegnet", None, config, config.execution)
    assert built[0]["dropout"] == 0.25
    with pytest.raises(ConfigError, match="deep_dropout applies only to the deep decoders"):
        workflow.BMIConfig(deep_dropout=0.25)


def test_physionet_subjects_are_read_together_for_loso(eeg_dir, tmp_path, capsys):
    """Several PhysioNet subjects in one run (S001 copied as S002 here: the shared data hold one)."""
    import os

    folder = tmp_path / "physionet-eegmmidb"
    for subject in (1, 2):
        (folder / f"S{subject:03d}").mkdir(parents=True)
        for run in (4, 8, 12):
            os.symlink(eeg_dir / "physionet-eegmmidb" / "S001" / f"S001R{run:02d}.edf",
                       folder / f"S{subject:03d}" / f"S{subject:03d}R{run:02d}.edf")
    out = tmp_path / "run"
    assert main(["bmi", "--dataset", "physionet-mi", "--data-dir", str(tmp_path), "--subjects", "1", "2",
                 "--decoders", "csp_lda", "--scheme", "loso", "--threads", "1", "--no-report", "--quiet",
                 "--out", str(out)]) == 0, capsys.readouterr().err
    row = BMIResult.load(Run(out)).decoders[0]
    assert sorted(row.per_subject) == ["1", "2"] and row.n_trials == 2 * 45
    # the same recording twice: the decoder fitted on one copy decodes the other as its own
    assert row.per_subject["1"] == row.per_subject["2"]
    assert main(["bmi", "--dataset", "physionet-mi", "--data-dir", str(tmp_path), "--subjects", "1", "3",
                 "--decoders", "csp_lda", "--out", str(tmp_path / "missing")]) == 2
    assert "S003" in capsys.readouterr().err and not (tmp_path / "missing").exists()


def test_csp_patterns_are_drawn_for_the_channels_a_montage_places(monkeypatch):
    import mne
    import numpy as np

    from neuroaikit.report.sections.bmi import _patterns

    drawn = []
    real = mne.viz.plot_topomap
    monkeypatch.setattr(mne.viz, "plot_topomap",
                        lambda data, info, **kw: drawn.append((list(info.ch_names), len(data))) or real(data, info, **kw))
    placed = {"ch_names": ["C3", "Cz", "C4", "X1"], "patterns": np.ones((2, 4))}
    assert _patterns(placed) is not None
    assert drawn == [(["C3", "Cz", "C4"], 3)] * 2  # X1 has no position: left out of both maps
    assert _patterns({"ch_names": [f"E{i}" for i in range(1, 9)], "patterns": np.ones((2, 8))}) is None
