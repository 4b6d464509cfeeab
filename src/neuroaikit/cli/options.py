"""Options shared by several commands, and the one way they become configurations.

Command-line options default to ``None``: only the values a user gives override the
configuration dataclass (or the ``--config`` file), so every default lives in one place, the
dataclass. Help texts read their defaults from it.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from ..config import Config, UnusedSettingError, load_config_file
from ..errors import ConfigError
from ..execution import PRECISIONS, ExecutionConfig

C = TypeVar("C", bound=Config)


def parse_value(text: str):
    """JSON if it parses (numbers, true/false, lists), else the plain string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def whole_number_or(word: str, number: str = "a whole number"):
    """An argparse ``type``: ``word`` as given, anything else read as an integer
    (``number`` names it in the usage error)."""

    def parse(text: str) -> int | str:
        if text == word:
            return text
        try:
            return int(text)
        except ValueError:
            import argparse

            raise argparse.ArgumentTypeError(f"expected {number} or {word!r}, got {text!r}") from None

    return parse


def positive_int(text: str) -> int:
    """An argparse ``type``: an integer >= 1 (thread counts, repeats), else a usage error."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        import argparse

        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def parse_assignments(items: list[str] | None, what: str, keep_strings: bool = False) -> dict:
    """``["a=1", "b=x"]`` to ``{"a": 1, "b": "x"}``; the key ends at the first ``=``. A name
    given twice is refused rather than the last one silently kept."""
    result: dict = {}
    given: dict = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{what} must look like NAME=VALUE, got {item!r}")
        key = key.strip()
        if key in given:
            raise ConfigError(f"{what} gives {key} twice ({given[key]!r} and {item!r}); give it once")
        given[key] = item
        result[key] = value.strip() if keep_strings else parse_value(value.strip())
    return result


def default_of(cls: type[Config], name: str) -> Any:
    """The dataclass default of a field (for help texts)."""
    return getattr(cls(), name) if not name.count(".") else None


def add_execution_arguments(parser, trains: bool = False, threads: int | None = None) -> None:
    """``--device``, ``--threads`` and, for commands that train, ``--precision``; ``threads``, where
    given, is the default thread count instead of torch's (a benchmark timed on one thread)."""
    d = ExecutionConfig()
    group = parser.add_argument_group("execution")
    group.add_argument("--device", help=f"auto | cpu | cuda | cuda:N | mps (default {d.device}: CUDA if "
                                        "available, then MPS, then CPU)")
    group.add_argument("--threads", type=int, default=threads,
                       help=f"torch CPU threads (default {threads})" if threads is not None else
                       "torch CPU threads (default: torch's; on a busy machine 1 is often fastest)")
    if trains:
        group.add_argument("--precision", choices=PRECISIONS,
                           help=f"32 | bf16-mixed | 16-mixed (CUDA only) (default {d.precision})")


def execution_values(args) -> dict:
    """The execution options the user gave, as a mapping for :class:`ExecutionConfig`."""
    values = {}
    for name in ("device", "threads", "precision"):
        value = getattr(args, name, None)
        if value is not None:
            values[name] = value
    return values


def execution_from_args(args) -> ExecutionConfig:
    return ExecutionConfig.from_dict(execution_values(args), where="execution")


def add_output_arguments(parser, resumable: bool = False, required: bool = True,
                         resume_may_change: str = "device and threads") -> None:
    """``--out`` and ``--overwrite`` (and ``--resume`` for jobs that checkpoint; ``resume_may_change``
    names the settings a resumed job accepts changed, as the command has them)."""
    parser.add_argument("--out", required=required, help="run folder to create")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a finished run at --out (removed only once the new one is complete)"
                        + (", or (without --resume) discard an interrupted job" if resumable else ""))
    if resumable:
        parser.add_argument("--resume", action="store_true",
                            help=f"continue the interrupted job in OUT.partial (same settings; {resume_may_change} "
                                 f"may change)")


def add_quiet_argument(parser) -> None:
    parser.add_argument("--quiet", action="store_true", help="no progress output")


def config_from_args(cls: type[C], args, names: dict[str, str] | list[str], config_file: str | None = None,
                     base: dict | None = None, base_file: str | None = None) -> C:
    """``cls`` from (in increasing priority) ``base``, the ``--config`` file and the options the
    user gave. ``names`` maps option attributes to config fields (a list: the same names); an
    ``execution`` block is taken from ``--device/--threads/--precision``.

    A setting typed, or set in the file to a value other than its default, that the
    configuration's ``_applies_only`` rules say the run would not use is refused
    (:class:`~neuroaikit.config.UnusedSettingError`, noting what came from the file; the CLI spells
    it in option names). A default in the file is no setting: a run's own ``config.json``, which
    holds every field, can be passed back.
    ``base_file`` names the ``--config`` file that ``base`` was read from, for a command that
    merges the file with its options itself (``train``'s ``--noise`` entries)."""
    values: dict[str, Any] = dict(base or {})
    in_file = set(load_config_file(base_file)) if base_file else set()
    if config_file:
        from_file = load_config_file(config_file)
        values.update(from_file)
        in_file |= set(from_file)
    label = config_file or base_file
    mapping = {n: n for n in names} if isinstance(names, list) else dict(names)
    typed: set[str] = set()
    for attr, field_name in mapping.items():
        value = getattr(args, attr, None)
        if value is not None:
            values[field_name] = value
            typed.add(field_name)
    execution = execution_values(args)
    if "execution" in cls.field_names() and execution:
        nested = values.get("execution") or {}
        if not isinstance(nested, dict):
            raise ConfigError("execution must be a mapping (device, precision, threads)")
        values["execution"] = {**nested, **execution}
    try:
        config = cls.from_dict(values, where="config")
    except UnusedSettingError as error:
        raise error.located(label, in_file - typed) from None
    unused = config.unused_setting(typed | (in_file & config.changed_fields()))
    if unused is not None:
        raise unused.located(label, in_file - typed)
    return config
