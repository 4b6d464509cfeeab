"""What ``calcium infer`` and ``calcium evaluate`` share around the computation: CPU thread
limits, the execution record, and the report built after the run is committed."""

from __future__ import annotations

import contextlib
from typing import Iterator

from ...execution import ExecutionConfig, torch_threads
from ...progress import Progress
from ...runs import Run


@contextlib.contextmanager
def cpu_threads(execution: ExecutionConfig) -> Iterator[None]:
    """Limit the BLAS / OpenMP pools (numpy, scipy, the OASIS extension) and torch to
    ``execution.threads`` for the block (``None``: the libraries' defaults), then restore."""
    from threadpoolctl import threadpool_limits

    with torch_threads(execution.threads), threadpool_limits(limits=execution.threads):
        yield


def execution_record(execution: ExecutionConfig) -> dict:
    """What ran, for metrics.json: the computation is NumPy / OASIS on the CPU whatever device
    was requested (the device is recorded, not used). Call inside :func:`cpu_threads`."""
    import torch
    from threadpoolctl import threadpool_info

    pools = {info.get("internal_api", info.get("prefix", "?")): info.get("num_threads") for info in threadpool_info()}
    return {
        "device": "cpu",
        "requested_device": execution.device,
        "threads": execution.threads,
        "torch_threads": torch.get_num_threads(),
        "thread_pools": pools,
    }


def build_report_after_commit(run: Run, progress: Progress) -> bool:
    """Write ``report.html`` for a committed run; a failure is logged (run log and progress)
    and never touches the results already in place. Returns whether the report was built."""
    try:
        from ...report import build_report

        build_report(run.path)
    except Exception as exc:  # noqa: BLE001 - any report bug must leave the finished results alone
        text = str(exc).strip().splitlines()
        message = f"report not built ({type(exc).__name__}: {text[0] if text else ''}); the results are in {run.path}"
        try:
            run.log(message)
        except Exception:  # noqa: BLE001 - a read-only folder must not turn this note into a failure
            pass
        progress.message(message)
        return False
    return True
