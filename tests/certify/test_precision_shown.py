"""A certificate says what precision it certified: ``neuroaikit certify`` prints the device and
precision, and the report's certificate table has them (a bf16 certificate certifies the rounded
network)."""

from __future__ import annotations

import re

import pytest

from neuroaikit.cli.main import main
from neuroaikit.training import TrainConfig, train

QUICK = ["--n0", "10", "--n", "50", "--n-examples", "4", "--threads", "1", "--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def smooth_run(tmp_path_factory):
    config = TrainConfig(dataset="digits", model="mlp", noise={"input": "gaussian:0.25"}, epochs=1, train_subset=200,
                         test_subset=50, eval_draws=1)
    return train(config, tmp_path_factory.mktemp("certify") / "run", progress=None).path


@pytest.mark.parametrize("precision, shown", [("bf16-mixed", "cpu, bf16-mixed"), ("32", "cpu, float32")])
def test_the_summary_and_the_report_say_the_certificates_precision(smooth_run, capsys, precision, shown):
    assert main(["certify", str(smooth_run), *QUICK, "--overwrite", "--precision", precision]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"images/s on {shown}\n", out), out
    page = (smooth_run / "report.html").read_text()
    assert "<th>computed on</th>" in page and f"<td>{shown}</td>" in page
