"""One validation mechanism for every configuration: declared per field, one-line errors."""

from __future__ import annotations

import dataclasses
import importlib
import pickle
import pkgutil
import re

import pytest

import neuroaikit
from neuroaikit.config import (AppliesOnly, Config, InstanceOf, Interval, Options, UnusedSettingError, _nested_type, all_config_classes,
                               check_value, load_config_file)
from neuroaikit.errors import ConfigError, DataError


def _import_everything() -> None:
    for info in pkgutil.walk_packages(neuroaikit.__path__, "neuroaikit."):
        if ".kernels" in info.name or info.name.endswith("__main__"):
            continue
        importlib.import_module(info.name)


def test_every_config_declares_every_field():
    _import_everything()
    classes = all_config_classes()
    names = {cls.__name__ for cls in classes}
    # the workflows' configurations are all on the one mechanism
    assert {"TrainConfig", "ExecutionConfig", "TwinFitConfig", "TwinModelConfig", "RobustnessConfig",
            "InferConfig", "EvaluationConfig", "SyntheticCortex", "AlignmentConfig", "EnergyConfig"} <= names, names
    for cls in classes:
        declared = set(cls._parameter_constraints)
        fields = {f.name for f in dataclasses.fields(cls)}
        nested = {name for name in fields if _nested_type(cls, name) is not None}
        # a nested configuration validates itself, so declaring it is optional
        assert fields - nested <= declared, f"{cls.__name__} does not declare {sorted(fields - nested - declared)}"
        assert declared <= fields, f"{cls.__name__} declares unknown fields {sorted(declared - fields)}"


def test_every_config_round_trips_its_defaults():
    _import_everything()
    for cls in all_config_classes():
        try:
            default = cls()
        except (TypeError, ConfigError):  # a config with required fields (a trace file, a job) has no default
            continue
        assert cls.from_dict(default.to_dict()) == default, cls.__name__


@pytest.mark.parametrize("value, ok", [(1, True), (0, False), (True, False), (2.5, False), ("3", False), (None, False)])
def test_integer_interval(value, ok):
    if ok:
        check_value("epochs", value, [Interval(int, 1, None)])
    else:
        with pytest.raises(ConfigError, match=r"^epochs must be an integer >= 1, got "):
            check_value("epochs", value, [Interval(int, 1, None)])


def test_float_interval_refuses_nan_and_open_bounds():
    for bad in (float("nan"), 0.0, -1.0):
        with pytest.raises(ConfigError, match="must be a number > 0"):
            check_value("lr", bad, [Interval(float, 0, None, closed="neither")])
    check_value("lr", 3, [Interval(float, 0, None, closed="neither")])  # ints are numbers


@pytest.mark.parametrize("constraint", [Interval(float, 0, None, closed="neither"), Interval(float, 0, None),
                                        Interval(float, None, None), Interval(float, None, 0)])
def test_float_interval_refuses_infinities(constraint):
    for bad in (float("inf"), float("-inf")):
        with pytest.raises(ConfigError, match=r"^lr must be .*, got -?inf \(not a finite number\)$"):
            check_value("lr", bad, [constraint])
    check_value("lr", 0.0 if constraint.high == 0 else 1e308, [constraint])  # large but finite is inside
    check_value("epochs", 10**400, [Interval(int, 1, None)])  # too large for a float: still an integer >= 1


def test_infinity_only_where_a_field_opts_in():
    check_value("limit", float("inf"), [Interval(float, 0, None, allow_inf=True)])
    with pytest.raises(ConfigError, match="must be a number > 0, got nan"):
        check_value("limit", float("nan"), [Interval(float, 0, None, closed="neither", allow_inf=True)])


@pytest.mark.parametrize("module, config, field, value", [
    ("neuroaikit.bmi.workflow", "BMIConfig", "eps_uv", [1.0, float("inf")]),
    ("neuroaikit.bmi.workflow", "BMIConfig", "snrs_db", [float("-inf")]),
    ("neuroaikit.bmi.workflow", "BMIConfig", "windows_s", [float("nan")]),
    ("neuroaikit.bmi.epochs", "PreprocessConfig", "notch", [float("inf")]),
    ("neuroaikit.bmi.epochs", "PreprocessConfig", "filter_bank", [[4, float("inf")]]),
    ("neuroaikit.bmi.epochs", "PreprocessConfig", "filter_bank", [["4", "8"]]),
    ("neuroaikit.certify.config", "CertificationConfig", "radii", [0.0, float("inf")]),
    ("neuroaikit.attacks.evaluate", "RobustnessConfig", "eps", [float("inf")]),
    ("neuroaikit.insilico.characterize", "GratingProtocol", "contrasts", [0.1, 0.5, float("inf")]),
    ("neuroaikit.neural.simulate", "SyntheticCortex", "kinds", [1.0, float("inf"), 0.0]),
])
def test_numeric_list_settings_refuse_non_finite_numbers(module, config, field, value):
    """The list settings checked by a predicate refuse what Interval refuses: an infinity or NaN
    (config.json would hold null) and a number written as a string."""
    import importlib

    cls = getattr(importlib.import_module(module), config)
    with pytest.raises(ConfigError, match=rf"^{field} must be "):
        cls.from_dict({field: value})


def test_a_config_that_exists_round_trips_through_json(tmp_path):
    """An infinity written to config.json would read back as null, and --resume would refuse the
    job's own settings: such a value is refused before anything is created."""
    from neuroaikit.io import read_json, write_json
    from neuroaikit.training import TrainConfig

    for field in ("noise_warmup", "lr"):
        with pytest.raises(ConfigError, match=rf"{field} must be a number .*, got inf \(not a finite number\)"):
            TrainConfig.from_dict({field: float("inf")})
    config = TrainConfig.from_dict({"noise_warmup": 2.5, "lr": 1e300})
    write_json(tmp_path / "config.json", config)
    assert TrainConfig.from_dict(read_json(tmp_path / "config.json")) == config


def test_the_cli_refuses_an_infinite_learning_rate_in_one_line(tmp_path, capsys):
    from neuroaikit.cli.main import main

    out = tmp_path / "run"
    code = main(["train", "--dataset", "digits", "--lr", "inf", "--quiet", "--no-report", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == ["error: --lr must be a number > 0, got inf (not a finite number)"]
    assert not out.exists() and not out.with_name("run.partial").exists()


def test_options_and_none():
    check_value("schedule", None, [Options(("none", "cosine")), None])
    with pytest.raises(ConfigError, match=r"schedule must be one of 'none', 'cosine', got 'linear'"):
        check_value("schedule", "linear", [Options(("none", "cosine")), None])
    with pytest.raises(ConfigError):
        check_value("schedule", ["none"], [Options(("none", "cosine"))])  # unhashable: simply not an option


def test_nested_configs_from_mappings_and_unknown_keys():
    from neuroaikit.training import TrainConfig

    config = TrainConfig.from_dict({"epochs": 2, "execution": {"device": "cpu", "threads": 1}})
    assert config.execution.threads == 1 and config.to_dict()["execution"]["device"] == "cpu"
    with pytest.raises(ConfigError, match="unknown TrainConfig option.* epoch; known: dataset"):
        TrainConfig.from_dict({"epoch": 2})
    with pytest.raises(ConfigError, match="threads must be an integer >= 1"):
        TrainConfig.from_dict({"execution": {"threads": 0}})
    with pytest.raises(ConfigError, match="must be a mapping"):
        TrainConfig.from_dict([1, 2])


def test_differences_name_dotted_fields():
    from neuroaikit.training import TrainConfig

    a, b = TrainConfig(), TrainConfig(lr=0.05).replace(epochs=2)
    assert {name for name, _, _ in a.differences(b)} == {"lr", "epochs"}
    assert a.differences(b, ignore=["lr", "epochs"]) == []


@pytest.mark.parametrize("content, message", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not a text"),
    (b'{"epochs": 2,', "not valid JSON"),
    (b"[1, 2, 3]", "must hold a mapping"),
    (b'"just a string"', "must hold a mapping"),
])
def test_config_files_give_one_line_errors(tmp_path, content, message):
    path = tmp_path / "config.json"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as info:
        load_config_file(path)
    assert "\n" not in str(info.value)


def test_missing_and_yaml_config_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_config_file(tmp_path / "missing.json")
    with pytest.raises(DataError, match="is a folder"):
        load_config_file(tmp_path)
    (tmp_path / "c.yaml").write_text("epochs: 2\nnoise:\n  relu1: gaussian:0.5\n")
    assert load_config_file(tmp_path / "c.yaml") == {"epochs": 2, "noise": {"relu1": "gaussian:0.5"}}
    (tmp_path / "bad.yaml").write_text("epochs: [1, 2\n")
    with pytest.raises(DataError, match="not valid YAML"):
        load_config_file(tmp_path / "bad.yaml")


def test_undeclared_field_is_a_programming_error():
    @dataclasses.dataclass
    class Careless(Config):
        size: int = 1

    with pytest.raises(TypeError, match="declares no constraint"):
        Careless()


def test_every_applies_only_rule_names_fields_of_its_class():
    """A misspelt field in a rule would never be refused: the rule would silently do nothing."""
    _import_everything()
    for cls in all_config_classes():
        known = set(cls.field_names())
        for rule in cls._applies_only:
            assert set(rule.fields) <= known, (cls.__name__, rule.fields)
            assert set(rule.causes) <= known, (cls.__name__, rule.causes)
            reason = rule.reason if isinstance(rule.reason, str) else ""
            assert set(re.findall(r"\{(\w+)\}", reason)) <= known, (cls.__name__, reason)
    from neuroaikit.neural.simulate import SyntheticCortex

    assert SyntheticCortex.conditional_fields() == {"tau", "trial_duration", "calcium_noise", "channel_correlation"}


@dataclasses.dataclass
class _Fit(Config):
    optimizer: str = "adam"
    momentum: float = 0.9
    schedule: list = dataclasses.field(default_factory=lambda: [1, 2])

    _parameter_constraints = {"optimizer": [Options(("sgd", "adam"))], "momentum": [Interval(float, 0, 1)],
                              "schedule": [InstanceOf(list, tuple)]}
    _applies_only = (AppliesOnly(("momentum",), lambda c: c.optimizer == "sgd", "applies only with {optimizer} sgd",
                                 ("optimizer",)),)


@dataclasses.dataclass
class _StrictFit(_Fit):
    _refuse_unused_changes = True


def test_a_setting_the_rules_say_is_unused_is_found_and_spelled():
    fit = _Fit(momentum=0.5)  # accepted: this class refuses only through the CLI
    error = fit.unused_setting({"momentum", "schedule"})
    assert isinstance(error, UnusedSettingError) and error.field == "momentum" and error.causes == ("optimizer",)
    assert str(error) == "momentum applies only with optimizer sgd"
    assert error.describe(lambda f: "--" + f) == "--momentum applies only with --optimizer sgd"
    assert _Fit(optimizer="sgd", momentum=0.5).unused_setting({"momentum"}) is None
    assert fit.unused_setting({"schedule"}) is None
    # where the setting or its cause came from a file, the message says so
    assert error.located("f.json", {"momentum"}).describe() == "momentum applies only with optimizer sgd (set in --config f.json)"
    assert error.located("f.json", {"optimizer"}).describe(lambda f: "--" + f) == \
        "--momentum applies only with --optimizer sgd (--optimizer set in --config f.json)"
    assert str(error.located("f.json", {"schedule"})) == str(error)
    # a Ray worker's error arrives whole
    copy = pickle.loads(pickle.dumps(error.located("f.json", {"momentum"})))
    assert (copy.field, copy.causes, copy.config_file, copy.from_file) == ("momentum", ("optimizer",), "f.json",
                                                                          ("momentum",))


def test_changed_fields_ignore_a_default_written_out():
    assert _Fit().changed_fields() == set()
    assert _Fit(momentum=0.9, schedule=(1, 2)).changed_fields() == set()
    assert _Fit(momentum=0.5, schedule=[2]).changed_fields() == {"momentum", "schedule"}


def test_a_strict_config_refuses_a_changed_unused_setting_on_construction():
    with pytest.raises(UnusedSettingError, match="momentum applies only with optimizer sgd"):
        _StrictFit(momentum=0.5)
    _StrictFit(momentum=0.9)  # the default, written out (a saved config holds every field)
    _StrictFit(optimizer="sgd", momentum=0.5)


@dataclasses.dataclass
class _Job(Config):
    fit: _StrictFit = dataclasses.field(default_factory=_StrictFit)
    _parameter_constraints = {"fit": [InstanceOf(_StrictFit)]}


@dataclasses.dataclass
class _Sweep(Config):
    job: _Job = dataclasses.field(default_factory=_Job)
    _parameter_constraints = {"job": [InstanceOf(_Job)]}


def test_a_nested_configuration_refusal_says_where_the_setting_is():
    """The path leads from the configuration built to the one holding the refused setting, so a
    caller can find (or drop) the setting in the mapping it gave; the message stays the field's."""
    with pytest.raises(UnusedSettingError) as raised:
        _Sweep.from_dict({"job": {"fit": {"momentum": 0.5}}})
    error = raised.value
    assert (error.field, error.path, str(error)) == ("momentum", ("job", "fit"),
                                                     "momentum applies only with optimizer sgd")
    with pytest.raises(UnusedSettingError) as raised:  # built from a mapping by the constructor
        _Job(fit={"momentum": 0.5})
    assert raised.value.path == ("fit",)
    copy = pickle.loads(pickle.dumps(error.located("f.json", {"momentum"})))
    assert (copy.path, copy.from_file) == (("job", "fit"), ("momentum",))
    assert _StrictFit.conditional_fields() == {"momentum"} and error.inside("x").path == ("x", "job", "fit")
