"""A resumed job ends where the uninterrupted one ends when callbacks steer training: a stop
asked for by the last finished epoch holds, and a stateful callback (OverfitGuard) continues
from its checkpointed state."""

import pytest
import torch

import neuroaikit.training.loop as loop
from neuroaikit.attacks.training import OverfitGuard
from neuroaikit.errors import ConfigError
from neuroaikit.progress import silent
from neuroaikit.runs import partial_dir
from neuroaikit.training import TrainConfig, train


def config(epochs):
    return TrainConfig.from_dict(dict(dataset="digits", model="mlp", epochs=epochs, train_subset=200, test_subset=100,
                                      execution={"device": "cpu", "threads": 1}))


class Interrupt(Exception):
    pass


def weights(run):
    return {k: v.clone() for k, v in run.load_model().state_dict().items()}


def same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def without_time(history):
    return [{k: v for k, v in record.items() if k != "elapsed_s"} for record in history]


def stop_after_1(model, epoch, record):
    return {"stop_training": 1.0} if epoch == 1 else {}


def test_a_job_killed_after_its_stopping_epoch_resumes_to_the_final_evaluation(tmp_path, monkeypatch):
    uninterrupted = train(config(3), tmp_path / "a", callbacks=[stop_after_1], progress=silent())
    assert len(uninterrupted.metrics["history"]) == 1

    def killed(*args, **kwargs):  # the kill lands between the stopping epoch's checkpoint and the commit
        raise Interrupt

    with monkeypatch.context() as patch:
        patch.setattr(loop, "evaluate_classifier", killed)
        with pytest.raises(Interrupt):
            train(config(3), tmp_path / "b", callbacks=[stop_after_1], progress=silent())
    assert (partial_dir(tmp_path / "b") / "checkpoint.pt").is_file()
    resumed = train(config(3), tmp_path / "b", resume=True, callbacks=[stop_after_1], progress=silent())
    assert [r["epoch"] for r in resumed.metrics["history"]] == [1]
    assert without_time(resumed.metrics["history"]) == without_time(uninterrupted.metrics["history"])
    assert resumed.metrics["test_accuracy"] == uninterrupted.metrics["test_accuracy"]
    assert same_weights(weights(resumed), weights(uninterrupted))


# PGD accuracy per epoch, scripted: with drop 0.5 the guard trips at epoch 4 (0.3 < 0.9 - 0.5)
# and restores epoch 1; a guard that forgot epochs 1-2 would take epoch 3 (0.75) as its best,
# not trip at epoch 4 (0.3 is not below 0.75 - 0.5) and train on to epoch 5
SCRIPT = {1: 0.9, 2: 0.5, 3: 0.75, 4: 0.3, 5: 0.95}


class ScriptedGuard(OverfitGuard):
    def __init__(self):
        super().__init__(torch.zeros(1, 1, 8, 8), torch.zeros(1, dtype=torch.long), drop=0.5)
        self.epoch = 0
        self.seen: list[dict] = []

    def __call__(self, model, epoch, record=None):
        self.epoch = epoch
        self.seen.append({k: v.clone() for k, v in model.state_dict().items()})
        return super().__call__(model, epoch, record)

    def pgd_accuracy(self, model):
        return SCRIPT[self.epoch]


def test_a_resumed_overfit_guard_restores_the_best_epoch_as_uninterrupted(tmp_path):
    guard = ScriptedGuard()
    uninterrupted = train(config(5), tmp_path / "a", callbacks=[guard], progress=silent())
    assert guard.tripped_ == 4 and guard.best_epoch_ == 1
    assert [r["epoch"] for r in uninterrupted.metrics["history"]] == [1, 2, 3, 4]
    assert same_weights(weights(uninterrupted), guard.seen[0])  # the weights the guard saw after epoch 1

    def crash_at_3(model, epoch, record):
        if epoch == 3:
            raise Interrupt
        return {}

    with pytest.raises(Interrupt):
        train(config(5), tmp_path / "b", callbacks=[crash_at_3, ScriptedGuard()], progress=silent())
    resumed_guard = ScriptedGuard()  # a new process: nothing in memory
    resumed = train(config(5), tmp_path / "b", resume=True, callbacks=[resumed_guard], progress=silent())
    assert resumed_guard.tripped_ == 4 and resumed_guard.best_epoch_ == 1
    assert resumed_guard.history_ == [SCRIPT[e] for e in (1, 2, 3, 4)]
    assert without_time(resumed.metrics["history"]) == without_time(uninterrupted.metrics["history"])
    assert same_weights(weights(resumed), weights(uninterrupted))


def test_resuming_with_a_guard_the_interrupted_job_lacked_is_refused(tmp_path):
    def crash_at_2(model, epoch, record):
        if epoch == 2:
            raise Interrupt
        return {}

    with pytest.raises(Interrupt):
        train(config(3), tmp_path / "run", callbacks=[crash_at_2], progress=silent())
    with pytest.raises(ConfigError, match=r"^--resume: .*after epoch 1 holds no state of the callback ScriptedGuard"):
        train(config(3), tmp_path / "run", resume=True, callbacks=[ScriptedGuard()], progress=silent())
    assert (partial_dir(tmp_path / "run") / "checkpoint.pt").is_file()  # still resumable without it


def test_overfit_guard_state_survives_a_weights_only_checkpoint(tmp_path):
    from neuroaikit.runs import load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    images, labels = torch.rand(16, 1, 8, 8), torch.randint(0, 10, (16,))
    guard = OverfitGuard(images, labels, eps=0.1, steps=2)
    guard(model, 1)
    save_checkpoint(tmp_path / "c.pt", {"guard": guard.state_dict()})
    again = OverfitGuard(images, labels, eps=0.1, steps=2)
    again.load_state_dict(load_checkpoint(tmp_path / "c.pt")["guard"])
    assert again.history_ == guard.history_ and again.best_accuracy_ == guard.best_accuracy_
    assert again.best_epoch_ == 1 and again.tripped_ is None
    assert same_weights(again.best_state_, model.state_dict())
