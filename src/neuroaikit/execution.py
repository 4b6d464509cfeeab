"""The execution layer: where and how a workflow computes.

One :class:`ExecutionConfig` (``--device``, ``--precision``, ``--threads``) and one
:class:`Execution` context serve every workflow (train, evaluate, twin fit / evaluate / probe,
align, energy, plasticity, calcium), so they all run on a CPU, a CUDA GPU or Apple's MPS in
the same way, and training workflows run data-parallel over several processes.

Several processes: start the unchanged command under ``torchrun``::

    torchrun --nproc_per_node 2 -m neuroaikit train --dataset mnist ... --out runs/mnist

The process group comes from torch.distributed (``gloo`` on CPUs, ``nccl`` on GPUs) and the
gradients are averaged by :class:`torch.nn.parallel.DistributedDataParallel`; neuroaikit only
decides what each process computes:

- ``--batch-size`` stays the *global* batch: each process takes an equal, contiguous share of
  every global batch (:meth:`Execution.shard`) and weighs its loss by its share
  (:meth:`Execution.loss_weight`), so the averaged gradient is the full batch's gradient; an
  epoch's last batch smaller than the process count is trained on too (:meth:`Execution.share`),
  so every process count trains on the same examples;
- all processes draw the same data order and augmentation, from seeds derived from
  ``(seed, epoch)``; noise layers and attacks draw from ``(seed, epoch, rank)``: independent per
  process, reproducible, and independent of how a job was split into resumed segments;
- only rank 0 writes (run folders, checkpoints, logs) and shows progress; decisions that must
  agree (early stopping, time limits) are made on rank 0 and broadcast.

The commands that compute in one process refuse ``torchrun`` (:func:`refuse_torchrun`).

Precision: ``"32"`` (default), ``"bf16-mixed"`` (autocast to bfloat16; CPU and GPU) and
``"16-mixed"`` (float16 autocast with a gradient scaler; CUDA only, where it is numerically
safe). Attacks and their gradient checks always run in float32.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import math
import os
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Iterator, TypeVar

import numpy as np
import torch
from torch import nn

from .config import Config, Options, POSITIVE_INT, Satisfies
from . import cpu_allocator, cpu_linear
from .cpu_linear import chosen_kernel, cpu_linear_kernels
from .errors import ConfigError
from .progress import interval_setting

Batch = TypeVar("Batch", torch.Tensor, np.ndarray)

PRECISIONS = ("32", "bf16-mixed", "16-mixed")
_DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def _valid_device(value: Any) -> bool:
    return isinstance(value, str) and bool(_DEVICE_PATTERN.match(value))


@dataclass
class ExecutionConfig(Config):
    """Where a workflow computes.

    Args:
        device (str): ``"auto"`` (CUDA if available, else MPS, else CPU), ``"cpu"``,
            ``"cuda"``, ``"cuda:N"`` or ``"mps"``. Under ``torchrun`` with CUDA each process
            takes the GPU of its local rank.
        precision (str): ``"32"``, ``"bf16-mixed"`` or ``"16-mixed"`` (CUDA only).
        threads (int | None): torch CPU threads for this job (``None``: torch's default).
            On a busy machine one thread is often fastest for small tensors.
    """

    device: str = "auto"
    precision: str = "32"
    threads: int | None = None

    _parameter_constraints: ClassVar[dict] = {
        "device": [Satisfies(_valid_device, "auto, cpu, cuda, cuda:N or mps")],
        "precision": [Options(PRECISIONS)],
        "threads": [POSITIVE_INT, None],
    }


def require_float32(config: ExecutionConfig | None, workflow: str, reason: str) -> None:
    """Refuse a reduced ``precision`` for a workflow that computes in float32 only, so that the
    option is never silently ignored; ``reason`` says why the workflow needs float32."""
    if config is not None and config.precision != "32":
        raise ConfigError(f"execution.precision must be '32' for {workflow} ({reason}), got {config.precision!r}")


def derive_seed(*parts: int) -> int:
    """A 31-bit seed determined by ``parts`` (e.g. ``(seed, epoch, rank)``); streams for
    different parts are independent (numpy's SeedSequence), except that trailing zeros are
    ignored: ``derive_seed(s, e)`` equals ``derive_seed(s, e, 0)``, so give streams nonzero tags."""
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(1)[0] & 0x7FFFFFFF)


def _env_world_size() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


DIST_TIMEOUT_ENV = "NEUROAIKIT_DIST_TIMEOUT_MIN"


def dist_timeout() -> datetime.timedelta:
    """How long a multi-process job's collectives wait for a slow process: the validated
    ``$NEUROAIKIT_DIST_TIMEOUT_MIN`` minutes (60 when unset); a one-line :class:`~neuroaikit.errors.ConfigError`
    naming the variable otherwise."""
    value = os.environ.get(DIST_TIMEOUT_ENV, "60")
    try:
        minutes = float(value)
        if math.isfinite(minutes) and minutes > 0:
            return datetime.timedelta(minutes=minutes)
    except (ValueError, OverflowError):
        pass
    raise ConfigError(f"{DIST_TIMEOUT_ENV} must be a number of minutes > 0, got {value!r}")


def check_environment() -> None:
    """Validate the environment settings every job reads (``NEUROAIKIT_CPU_LINEAR``,
    ``NEUROAIKIT_CPU_ALLOCATOR``, ``NEUROAIKIT_PROGRESS_INTERVAL``,
    ``NEUROAIKIT_DIST_TIMEOUT_MIN``): a one-line :class:`~neuroaikit.errors.ConfigError` for a bad value.
    Entering an :class:`Execution` calls it before a job creates anything; scripts that enter
    ``Execution`` later can call it up front."""
    cpu_linear.setting()
    cpu_allocator.setting()
    interval_setting()
    dist_timeout()


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """The torch device for ``name`` (see :class:`ExecutionConfig`); a device that is not
    there is a one-line error."""
    if not _valid_device(name):
        raise ConfigError(f"device must be auto, cpu, cuda, cuda:N or mps, got {name!r}")
    mps = getattr(torch.backends, "mps", None)
    mps_ok = bool(mps is not None and mps.is_available())
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        return torch.device("mps") if mps_ok else torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} requested but no CUDA device is available (use --device cpu)")
        index = int(name.split(":")[1]) if ":" in name else local_rank % torch.cuda.device_count()
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
        return torch.device("cuda", index)
    if name == "mps":
        if not mps_ok:
            raise ConfigError("device 'mps' requested but Apple's MPS backend is not available (use --device cpu)")
        return torch.device("mps")
    return torch.device("cpu")


class Execution:
    """The context a workflow computes in (``with Execution(config) as ex: ...``).

    On entry it joins the ``torchrun`` process group when there is one (``WORLD_SIZE`` > 1),
    resolves the device and sets the thread count, and on a CPU keeps freed memory for reuse
    (:mod:`neuroaikit.cpu_allocator`); on exit it restores the thread count, hands free memory
    back and leaves the process group it created. ``join_group=False`` computes on this process alone
    (rank 0's evaluation after a data-parallel fit). Everything is also usable without
    ``with`` for a single process.
    """

    def __init__(self, config: ExecutionConfig | None = None, join_group: bool = True):
        self.config = config or ExecutionConfig()
        self.join_group = join_group
        self.rank = 0
        self.local_rank = 0
        self.world_size = 1
        self._owns_group = False
        self._threads_before: int | None = None
        #: ``"reuse"`` while freed CPU memory is kept for the next pass, else ``"system"``
        self.cpu_allocator = "system"
        self.device = torch.device("cpu")
        self._entered = False
        self._check_precision_names()

    def _check_precision_names(self) -> None:
        if self.config.precision not in PRECISIONS:  # pragma: no cover - the config validates it
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}")

    # -- lifecycle -------------------------------------------------------
    def __enter__(self) -> "Execution":
        import torch.distributed as dist

        check_environment()  # a bad setting stops the job before anything exists
        if not self.join_group:
            self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))  # one process's own work, on its own device
        elif dist.is_available() and dist.is_initialized():
            self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
            self.local_rank = int(os.environ.get("LOCAL_RANK", self.rank))
        elif _env_world_size() > 1:
            if not dist.is_available():  # pragma: no cover - every supported build has it
                raise ConfigError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
            self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
            wants_cuda = self.config.device.startswith("cuda") or (
                self.config.device == "auto" and torch.cuda.is_available())
            backend = "nccl" if wants_cuda and torch.cuda.is_available() else "gloo"
            dist.init_process_group(backend, timeout=dist_timeout())
            self._owns_group = True
            self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.device = resolve_device(self.config.device, self.local_rank)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        if self.config.precision == "16-mixed" and self.device.type != "cuda":
            raise ConfigError("precision '16-mixed' needs a CUDA device (float16 gradients underflow without "
                              "CUDA's gradient scaler); use bf16-mixed or 32")
        if self.config.threads:
            self._threads_before = torch.get_num_threads()
            torch.set_num_threads(self.config.threads)
        if self.device.type == "cpu" and cpu_allocator.chosen() == "reuse" and cpu_allocator.reuse_freed_memory():
            self.cpu_allocator = "reuse"
        self._entered = True
        return self

    def __exit__(self, *exc_info) -> None:
        if self._threads_before is not None:
            torch.set_num_threads(self._threads_before)
            self._threads_before = None
        if self.cpu_allocator == "reuse":
            cpu_allocator.release_free_memory()
            self.cpu_allocator = "system"
        if self._owns_group:
            import torch.distributed as dist

            if dist.is_initialized():
                if exc_info[0] is None:
                    # A rank that finished early (rank > 0 skips the final evaluation) tore its
                    # gloo group down while rank 0 still worked, and now and then died with
                    # SIGABRT at exit ("terminate called without an active exception"); the
                    # DDP reducer's reference cycles also kept the group alive into interpreter
                    # shutdown. So: everyone finishes, the cycles are freed, then the group goes.
                    dist.barrier()
                    gc.collect()
                dist.destroy_process_group()
            self._owns_group = False
        self._entered = False

    # -- who am I ----------------------------------------------------------
    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on the process that writes files and shows progress (rank 0)."""
        return self.rank == 0

    def describe(self) -> dict:
        """What actually ran, for the run's record."""
        info = {"device": str(self.device), "precision": self.config.precision,
                "threads": torch.get_num_threads(), "world_size": self.world_size, "torch": torch.__version__}
        if self.device.type == "cuda":
            info["gpu"] = torch.cuda.get_device_name(self.device)
        if self.device.type == "cpu" and self.config.precision == "32":
            info["cpu_linear"] = chosen_kernel()
        if self.device.type == "cpu":
            info["cpu_allocator"] = self.cpu_allocator
        if self.distributed:
            import torch.distributed as dist

            info["backend"] = dist.get_backend()
        return info

    # -- seeds -----------------------------------------------------------
    def process_seed(self, *parts: int) -> int:
        """A seed for this process's own random streams (noise draws, attack starts):
        ``derive_seed(*parts, rank)``, identical to ``derive_seed(*parts, 0)`` on one process and
        so to ``derive_seed(*parts)``: tag ``parts`` with a stream of its own."""
        return derive_seed(*parts, self.rank)

    # -- models ----------------------------------------------------------
    def wrap(self, model: nn.Module, find_unused_parameters: bool = False) -> nn.Module:
        """``model`` on the device, inside DistributedDataParallel when there are several
        processes. On GPUs batch norm is synchronised over the processes (so a global batch
        is normalised as one); torch's SyncBatchNorm is GPU-only, so on CPUs each process
        normalises its own share (the reason a CPU run with batch norm matches a
        one-process run only to a tolerance)."""
        model = model.to(self.device)
        if not self.distributed:
            return model
        from torch.nn.parallel import DistributedDataParallel

        if self.device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused_parameters)

    # -- batches ---------------------------------------------------------
    def require_shares(self, count: int, what: str) -> None:
        """Refuse a global ``count`` (a batch size, a number of examples; ``what`` names the
        setting) smaller than the process count, in one line: some process would get nothing."""
        if count < self.world_size:
            raise ConfigError(f"{what} {count} is smaller than the {self.world_size} processes")

    def shard(self, global_batch: Batch) -> Batch:
        """This process's contiguous share of a global batch of indices (sizes differ by at
        most one when the batch does not divide evenly)."""
        n = len(global_batch)
        start = (n * self.rank) // self.world_size
        stop = (n * (self.rank + 1)) // self.world_size
        return global_batch[start:stop]

    def share(self, global_batch: Batch) -> tuple[Batch, int]:
        """What this process computes of a global training batch, and how many of its examples
        count: its :meth:`shard`, all counted; or, when the batch (an epoch's last) is smaller
        than the process count, the whole batch on every process, counted on rank 0 only.

        Every process must run the forward and backward passes of each step (DDP averages the
        gradients of all of them). Splitting such a batch would leave some processes one example
        or none, which batch norm cannot train on without synchronised statistics; so each
        process computes the whole batch, and all but rank 0 weigh their loss 0
        (``loss_weight(0, n)``). The batch is then trained on as one process trains on it: rank
        0's gradient, its noise draws (its stream is one process's) and its batch-norm
        statistics, which DDP hands to the others."""
        if 0 < len(global_batch) < self.world_size:
            return global_batch, len(global_batch) if self.rank == 0 else 0
        mine = self.shard(global_batch)
        return mine, len(mine)

    def loss_weight(self, local_size: int, global_size: int) -> float:
        """Factor for a mean-reduced local loss so that DDP's average of the processes'
        gradients equals the gradient of the global batch's mean loss."""
        return self.world_size * local_size / max(global_size, 1)

    # -- precision -------------------------------------------------------
    def autocast(self) -> contextlib.AbstractContextManager:
        """The forward-pass context for the configured precision. In ``"32"`` on a CPU, linear
        layers go through oneDNN where PyTorch's BLAS leaves AVX-512 unused (AMD CPUs; see
        :mod:`neuroaikit.cpu_linear`); otherwise ``"32"`` changes nothing."""
        if self.config.precision == "32":
            return cpu_linear_kernels() if self.device.type == "cpu" else contextlib.nullcontext()
        dtype = torch.bfloat16 if self.config.precision == "bf16-mixed" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def optimizer_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer,
                       scaler: "torch.amp.GradScaler | None" = None) -> None:
        """``zero_grad``, backward and step, through the gradient scaler for 16-mixed."""
        optimizer.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            optimizer.step()
            return
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    def grad_scaler(self) -> "torch.amp.GradScaler | None":
        if self.config.precision != "16-mixed":
            return None
        return torch.amp.GradScaler(self.device.type)

    # -- collectives (decisions that must agree) --------------------------
    def broadcast(self, value: Any) -> Any:
        """``value`` as rank 0 has it, on every process."""
        if not self.distributed:
            return value
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def all_sum(self, values: list[float]) -> list[float]:
        """Element-wise sums over the processes (epoch totals for the record)."""
        if not self.distributed:
            return [float(v) for v in values]
        import torch.distributed as dist

        on = self.device if dist.get_backend() == "nccl" else torch.device("cpu")
        tensor = torch.tensor(values, dtype=torch.float64, device=on)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def gather(self, value: Any) -> list:
        """Every process's ``value`` (picklable), in rank order, on every process."""
        if not self.distributed:
            return [value]
        import torch.distributed as dist

        values: list = [None] * self.world_size
        dist.all_gather_object(values, value)
        return values

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()


def process_count() -> int:
    """How many processes this job has: the process group's size once there is one, else
    ``torchrun``'s ``WORLD_SIZE`` (1 without it)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return _env_world_size()


def refuse_torchrun(command: str, reason: str) -> None:
    """Refuse, in one line and before the job creates anything, to run ``command`` in more than
    one process: every rank would run the whole job and write the same files. ``reason`` says
    why the command runs in one process."""
    processes = process_count()
    if processes > 1:
        raise ConfigError(f"{command} runs in one process ({reason}); start it without torchrun "
                          f"(it has {processes} processes)")


def is_main_process() -> bool:
    """True unless this is a process of rank > 0 of a ``torchrun`` job (also after the
    process group is gone: commands print their closing lines on rank 0 only)."""
    return os.environ.get("RANK", "0") == "0"


def model_device(model: nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer (CPU for a module with neither): where
    its inputs must go."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


@contextlib.contextmanager
def evaluation_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode within the block, every module's own training flag restored after
    it (not one ``train(mode)`` for all: a user may keep some modules in training mode)."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (attacks and evaluation run on it:
    their backward passes must not trigger gradient synchronisation)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run a block with ``threads`` torch CPU threads (``None``: unchanged), then restore.

    Many small matrix operations (alignment metrics on tens to hundreds of stimuli) were ~5x
    slower with torch's thread pool than with one thread on a busy machine (the align tests:
    58 s with 2 threads, 11 s with 1), hence the callers that ask for one."""
    if not threads:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
