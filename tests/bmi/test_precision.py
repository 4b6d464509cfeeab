"""``--precision`` reaches the deep decoders only: with none of them it is refused in one line
before anything is created, rather than ignored and recorded as used."""

from __future__ import annotations

import pytest

from neuroaikit.bmi.workflow import BMIConfig
from neuroaikit.cli.main import main
from neuroaikit.errors import ConfigError
from neuroaikit.execution import ExecutionConfig


def test_a_reduced_precision_without_a_deep_decoder_is_refused():
    with pytest.raises(ConfigError, match=r"^--precision bf16-mixed applies to the deep decoders \(eegnet, shallow\) "
                                          r"only"):
        BMIConfig(decoders=["cca", "ts_lr"], execution=ExecutionConfig(precision="bf16-mixed"))
    # a deep decoder among them uses it; float32 needs none
    BMIConfig(decoders=["cca", "eegnet"], execution=ExecutionConfig(precision="bf16-mixed"))
    BMIConfig(decoders=["cca"], execution=ExecutionConfig(precision="32"))


def test_the_cli_refuses_it_in_one_line_and_creates_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["bmi", "--decoders", "cca", "--precision", "bf16-mixed", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("error: --precision bf16-mixed applies to the deep decoders (eegnet, shallow) only"), err
    assert not out.exists()
