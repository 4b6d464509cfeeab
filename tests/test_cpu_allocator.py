"""Freed CPU memory kept for reuse during a job: validated setting, recorded choice, and fewer page
faults for a network's repeated large activations (measured in fresh processes, since the
allocator's settings are process-wide)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from neuroaikit import cpu_allocator
from neuroaikit.errors import ConfigError
from neuroaikit.execution import Execution, ExecutionConfig

REPO = Path(__file__).resolve().parents[1]
glibc_only = pytest.mark.skipif(cpu_allocator._glibc() is None, reason="needs glibc's malloc")

# minor page faults (fresh pages mapped in) of 20 passes, after 10 warm-up passes, that each
# allocate, fill and free 48 MiB: a float32 activation of 256 images x 16 channels x 56 x 56, above glibc's 32 MiB
# ceiling for blocks it keeps
PASSES = textwrap.dedent("""
    import resource, sys, torch
    from neuroaikit.execution import Execution, ExecutionConfig
    def faults():
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    with Execution(ExecutionConfig(device="cpu")) as ex:
        for _ in range(10):  # the first passes map their pages in either way
            torch.empty(12 * 2**20).fill_(1.0)
        before = faults()
        for _ in range(20):
            activation = torch.empty(12 * 2**20)
            activation.fill_(1.0)
            del activation
        print(ex.describe()["cpu_allocator"], faults() - before)
""")


def passes_in_a_fresh_process(setting: str) -> tuple[str, int]:
    result = subprocess.run([sys.executable, "-c", PASSES], capture_output=True, text=True, timeout=120,
                            env={**os.environ, cpu_allocator.ENV: setting})
    assert result.returncode == 0, result.stderr
    chosen, faults = result.stdout.split()
    return chosen, int(faults)


@glibc_only
def test_reused_memory_is_not_faulted_in_again_at_every_pass():
    chosen, faults = passes_in_a_fresh_process("auto")
    system_chosen, system_faults = passes_in_a_fresh_process("system")
    assert (chosen, system_chosen) == ("reuse", "system")
    pages_per_pass = 48 * 2**20 // 4096
    assert system_faults >= 15 * pages_per_pass  # glibc maps every such block afresh
    # kept: once glibc's heap has settled (the first few passes of a fresh process each take fresh
    # pages while its layout settles, hence the 10 warm-up passes) a pass touches no new page; the
    # margin is for a pass that finds its block split by a small allocation made in between
    assert faults <= 4 * pages_per_pass


def test_the_setting_is_validated_and_recorded(monkeypatch):
    monkeypatch.setenv(cpu_allocator.ENV, "jemalloc")
    with pytest.raises(ConfigError, match=r"NEUROAIKIT_CPU_ALLOCATOR must be one of \['auto', 'reuse', 'system'\]"):
        Execution(ExecutionConfig(device="cpu")).__enter__()
    monkeypatch.setenv(cpu_allocator.ENV, "system")
    with Execution(ExecutionConfig(device="cpu")) as ex:
        assert ex.describe()["cpu_allocator"] == "system"


def test_reuse_is_applied_on_entry_and_memory_handed_back_on_exit(monkeypatch):
    calls = []
    monkeypatch.setattr(cpu_allocator, "_glibc", lambda: FakeLibc(calls))
    monkeypatch.setenv(cpu_allocator.ENV, "auto")
    with Execution(ExecutionConfig(device="cpu")) as ex:
        assert ex.describe()["cpu_allocator"] == "reuse"
        assert calls == [("mallopt", -3, cpu_allocator.MMAP_THRESHOLD), ("mallopt", -1, cpu_allocator.TRIM_THRESHOLD)]
    assert calls[-1] == ("malloc_trim", 0)
    assert ex.cpu_allocator == "system"


def test_without_glibc_auto_leaves_malloc_alone_and_reuse_is_refused(monkeypatch):
    monkeypatch.setattr(cpu_allocator, "_glibc", lambda: None)
    monkeypatch.setenv(cpu_allocator.ENV, "auto")
    with Execution(ExecutionConfig(device="cpu")) as ex:
        assert ex.describe()["cpu_allocator"] == "system"
    monkeypatch.setenv(cpu_allocator.ENV, "reuse")
    with pytest.raises(ConfigError, match="needs glibc's malloc"):
        cpu_allocator.setting()


def test_a_glibc_that_refuses_the_large_threshold_gets_its_maximum(monkeypatch):
    calls: list = []
    monkeypatch.setattr(cpu_allocator, "_glibc", lambda: FakeLibc(calls, refused={cpu_allocator.MMAP_THRESHOLD}))
    assert cpu_allocator.reuse_freed_memory()
    assert calls == [("mallopt", -3, cpu_allocator.MMAP_THRESHOLD), ("mallopt", -3, 32 * 2**20),
                     ("mallopt", -1, cpu_allocator.TRIM_THRESHOLD)]


class FakeLibc:
    """Records the calls; ``mallopt`` refuses (returns 0) the values in ``refused``, as glibc does
    a threshold above its maximum."""

    def __init__(self, calls: list, refused: set = frozenset()):
        self.calls = calls
        self.refused = refused

    def mallopt(self, parameter: int, value: int) -> int:
        self.calls.append(("mallopt", parameter, value))
        return 0 if value in self.refused else 1

    def malloc_trim(self, pad: int) -> int:
        self.calls.append(("malloc_trim", pad))
        return 1


def test_a_bad_setting_stops_a_command_in_one_line_before_it_creates_anything(tmp_path):
    out = tmp_path / "runs" / "digits"
    command = [sys.executable, "-m", "neuroaikit", "train", "--dataset", "digits", "--epochs", "1", "--quiet",
               "--no-report", "--out", str(out)]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env={**os.environ, cpu_allocator.ENV: "tcmalloc"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: NEUROAIKIT_CPU_ALLOCATOR must be one of ['auto', 'reuse', 'system'], got 'tcmalloc'"]
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("args, message", [
    (["--repeats", "0"], "--repeats, --images and --samples must be >= 1, got 0, 16, 640"),
    (["--workloads", "certify_batched,video"], "unknown workload(s) ['video']"),
    (["--data-dir", "/no/such/folder"], "no mnist folder in --data-dir /no/such/folder"),
])
def test_the_benchmark_refuses_bad_settings_in_one_line(shared_data, tmp_path, args, message):
    command = [sys.executable, str(REPO / "benchmarks" / "cpu_allocator.py"), "--data-dir", str(shared_data), *args]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert message in result.stderr.splitlines()[-1] and "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("script, data, variable", [
    ("certify.py", "mnist", cpu_allocator.ENV),
    ("certify.py", "mnist", "NEUROAIKIT_CPU_LINEAR"),
    ("cpu_allocator.py", "", "NEUROAIKIT_CPU_LINEAR"),
])
def test_benchmarks_refuse_a_bad_environment_setting_in_one_line(shared_data, tmp_path, script, data, variable):
    command = [sys.executable, str(REPO / "benchmarks" / script), "--data-dir", str(shared_data / data)]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env={**os.environ, variable: "fastest"})
    assert result.returncode == 2
    assert f"{variable} must be one of" in result.stderr.splitlines()[-1] and "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()
