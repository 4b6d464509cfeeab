"""The run lifecycle: what counts as a change of settings when a job is resumed."""

from __future__ import annotations

import pytest

from neuroaikit.continual import ContinualConfig
from neuroaikit.errors import ConfigError
from neuroaikit.io import read_json, write_json
from neuroaikit.runs import RunWriter, partial_dir


def test_resume_accepts_a_job_written_before_a_setting_existed(tmp_path):
    out = tmp_path / "run"
    with RunWriter(out, ContinualConfig(iters=5)) as writer:
        writer.save_checkpoint({"task": 1})
    stored = read_json(partial_dir(out) / "config.json")
    assert stored["pad"] == 0
    del stored["pad"]  # config.json as a version without the setting wrote it
    write_json(partial_dir(out) / "config.json", stored)
    assert RunWriter(out, ContinualConfig(iters=5), resume=True).resuming
    with pytest.raises(ConfigError, match="pad: 0 -> 2"):
        RunWriter(out, ContinualConfig(iters=5, pad=2), resume=True)
    with pytest.raises(ConfigError, match="iters: 5 -> 6"):
        RunWriter(out, ContinualConfig(iters=6), resume=True)
