"""Configurations: dataclasses whose fields are validated from one declaration.

Every workflow takes a ``*Config`` that derives from :class:`Config`. Each field declares what
it accepts in ``_parameter_constraints`` (the scikit-learn convention): a list of constraints,
any of which may match::

    @dataclass
    class FitConfig(Config):
        epochs: int = 10
        lr: float = 1e-3
        schedule: str = "none"
        subset: int | None = None

        _parameter_constraints: ClassVar[dict] = {
            "epochs": [Interval(int, 1, None)],
            "lr": [Interval(float, 0, None, closed="neither")],
            "schedule": [Options({"none", "cosine"})],
            "subset": [Interval(int, 1, None), None],
        }

Validation runs in ``__post_init__``, so a config that exists is valid; a bad value raises a
one-line :class:`~neuroaikit.errors.ConfigError` naming the field, what it accepts and what it
got.

A setting that some other settings make pointless (an attack's EOT with no attack, SGD's momentum
under Adam) is declared in ``_applies_only``, a tuple of :class:`AppliesOnly` rules. A setting
that is silently ignored reads, in a saved config, as if it had shaped the results, so such a
setting is refused with an :class:`UnusedSettingError`: by every command that builds its config
with ``neuroaikit.cli.options.config_from_args``, for each option typed, or set in ``--config``
to a value other than its default; and, for a class that sets ``_refuse_unused_changes``, by the
config itself, for each field changed from its default. The others accept it in the Python API,
where a sweep's base settings legitimately apply to only some of its trials.

A field whose type is itself a :class:`Config` is a nested configuration: ``from_dict``
builds it from a mapping, ``to_dict`` writes it as one. Defaults live only here: command-line
options default to ``None`` and only the values the user gave override the dataclass.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import re
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Mapping, TypeVar

from .errors import ConfigError, DataError

C = TypeVar("C", bound="Config")


class Constraint:
    """One kind of value a field accepts."""

    def is_satisfied_by(self, value: Any) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError


def _is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real_number(value: Any) -> bool:
    """A real number of any type (numpy scalars too); bool is refused although it is an int."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_finite_number(value: Any) -> bool:
    """A real number (not a bool) that is neither infinite nor NaN: what a numeric setting in a
    list holds (JSON stores infinities and NaN as null, so ``config.json`` would not read back)."""
    return is_real_number(value) and math.isfinite(value)


class Interval(Constraint):
    """A number of type ``kind`` (``int`` or ``float``; ints are accepted for floats) in
    ``[low, high]``; ``closed`` is ``"both"``, ``"left"``, ``"right"`` or ``"neither"``; a bound
    of ``None`` is open-ended. NaN is never inside, and infinities only with ``allow_inf``: JSON
    stores them as null, so a config holding one would not read back from ``config.json``."""

    def __init__(self, kind: type, low: float | None, high: float | None, closed: str = "both",
                 allow_inf: bool = False):
        if kind not in (int, float):
            raise TypeError("Interval kind must be int or float")
        if closed not in ("both", "left", "right", "neither"):
            raise TypeError(f"closed must be both, left, right or neither, not {closed!r}")
        self.kind, self.low, self.high, self.closed = kind, low, high, closed
        self.allow_inf = allow_inf

    def is_satisfied_by(self, value: Any) -> bool:
        if not (_is_integer(value) if self.kind is int else is_real_number(value)):
            return False
        if not _is_integer(value):  # ints are never NaN or infinite (and may be too large for a float)
            if math.isnan(value) or (math.isinf(value) and not self.allow_inf):
                return False
        if self.low is not None:
            if value < self.low or (value == self.low and self.closed in ("right", "neither")):
                return False
        if self.high is not None:
            if value > self.high or (value == self.high and self.closed in ("left", "neither")):
                return False
        return True

    def describe(self) -> str:
        what = "an integer" if self.kind is int else "a number"
        if self.low is None and self.high is None:
            return what
        if self.high is None:
            return f"{what} {'>=' if self.closed in ('both', 'left') else '>'} {self.low:g}"
        if self.low is None:
            return f"{what} {'<=' if self.closed in ('both', 'right') else '<'} {self.high:g}"
        left = "[" if self.closed in ("both", "left") else "("
        right = "]" if self.closed in ("both", "right") else ")"
        return f"{what} in {left}{self.low:g}, {self.high:g}{right}"


class Options(Constraint):
    """One of a fixed set of values (strings, usually)."""

    def __init__(self, options: Iterable[Any]):
        self.options = tuple(options)

    def is_satisfied_by(self, value: Any) -> bool:
        try:
            return value in self.options and not (isinstance(value, bool) and True not in self.options)
        except TypeError:  # unhashable values are simply not among the options
            return False

    def describe(self) -> str:
        shown = ", ".join(repr(o) for o in self.options)
        return f"one of {shown}"


class InstanceOf(Constraint):
    """An instance of ``types`` (``bool`` is never taken for ``int``)."""

    def __init__(self, *types: type, description: str | None = None):
        self.types = types
        self.description = description

    def is_satisfied_by(self, value: Any) -> bool:
        if isinstance(value, bool) and bool not in self.types:
            return False
        return isinstance(value, self.types)

    def describe(self) -> str:
        if self.description:
            return self.description
        names = {bool: "true or false", str: "a string", dict: "a mapping", list: "a list", int: "an integer",
                 float: "a number"}
        return " or ".join(names.get(t, f"a {t.__name__}") for t in self.types)


class Satisfies(Constraint):
    """Any value for which ``predicate(value)`` is true (``description`` says what that means)."""

    def __init__(self, predicate: Callable[[Any], bool], description: str):
        self.predicate = predicate
        self.description = description

    def is_satisfied_by(self, value: Any) -> bool:
        try:
            return bool(self.predicate(value))
        except (TypeError, ValueError):
            return False

    def describe(self) -> str:
        return self.description


BOOL = InstanceOf(bool)
STRING = InstanceOf(str)
MAPPING = InstanceOf(dict)
POSITIVE_INT = Interval(int, 1, None)
NON_NEGATIVE_INT = Interval(int, 0, None)
POSITIVE = Interval(float, 0, None, closed="neither")
NON_NEGATIVE = Interval(float, 0, None)
PATH = InstanceOf(str, os.PathLike, description="a path")


def _describe_all(constraints: list) -> str:
    # a None alternative goes unmentioned: the value given was not None, and "unset" is no advice
    parts = [c.describe() for c in constraints if c is not None]
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " or " + parts[-1]


def check_value(name: str, value: Any, constraints: list, where: str = "") -> None:
    """Raise a one-line :class:`~neuroaikit.errors.ConfigError` unless ``value`` satisfies one of ``constraints``
    (``None`` in the list admits ``None``)."""
    for constraint in constraints:
        if constraint is None:
            if value is None:
                return
        elif constraint.is_satisfied_by(value):
            return
    shown = " ".join(repr(value).split())  # one line, even for an array's repr
    if len(shown) > 60:
        shown = shown[:57] + "..."
    if is_real_number(value) and not _is_integer(value) and not math.isfinite(value):
        shown += " (not a finite number)"  # "> 0, got inf" alone would read as a contradiction
    raise ConfigError(f"{where}{name} must be {_describe_all(constraints)}, got {shown}")


class DeclaredParameters:
    """For scikit-learn estimators: parameters declared in ``_parameter_constraints`` with this
    module's constraints, as configurations declare their fields, and checked by
    ``_validate_params`` (scikit-learn's hook, which ``fit`` calls before computing anything); a
    bad one is a one-line ConfigError naming it. List it before ``BaseEstimator``, whose own
    ``_validate_params`` expects scikit-learn's constraint objects."""

    _parameter_constraints: ClassVar[dict] = {}

    def _validate_params(self) -> None:
        for name, constraints in self._parameter_constraints.items():
            check_value(name, getattr(self, name), constraints, where=f"{type(self).__name__}: ")


class UnusedSettingError(ConfigError):
    """A setting (``field``) the run would not use, because of the settings ``causes``.
    ``reason`` names fields in braces ("applies only with {robustness}"); ``describe(name)``
    spells them, as field names by default or, given a function, as a command's option names.
    ``config_file`` and ``from_file`` (set by :meth:`located`) say which of the settings involved
    came from a configuration file rather than the command line. ``path`` leads from the
    configuration being built to the nested one that holds ``field``
    (``("synthetic", "cortex")`` for a refused ``SyntheticCortex`` setting of a ``TwinFitJob``):
    ``Config.from_dict`` fills it in, so that a caller can find the setting in the mapping it gave."""

    def __init__(self, field: str, reason: str, causes: tuple[str, ...] = (), config_file: str | None = None,
                 from_file: tuple[str, ...] = (), path: tuple[str, ...] = ()):
        self.field = field
        self.reason = reason
        self.causes = tuple(causes)
        self.config_file = config_file
        self.from_file = tuple(from_file)
        self.path = tuple(path)
        super().__init__(self.describe())

    def describe(self, name: Callable[[str], str] = str) -> str:
        text = f"{name(self.field)} " + re.sub(r"\{(\w+)\}", lambda m: name(m.group(1)), self.reason)
        if self.config_file is None or not self.from_file:
            return text
        if self.from_file == (self.field,):
            return f"{text} (set in --config {self.config_file})"
        return f"{text} ({', '.join(name(f) for f in self.from_file)} set in --config {self.config_file})"

    def located(self, config_file: str | None, in_file: Iterable[str]) -> "UnusedSettingError":
        """This error, noting which of its field and causes are among ``in_file`` (the settings
        that came from ``config_file``, not typed)."""
        where = set(in_file)
        from_file = tuple(f for f in (self.field, *self.causes) if f in where)
        return type(self)(self.field, self.reason, self.causes, config_file if from_file else None, from_file,
                          self.path)

    def inside(self, name: str) -> "UnusedSettingError":
        """This error, as raised by the configuration held in field ``name`` of another."""
        return type(self)(self.field, self.reason, self.causes, self.config_file, self.from_file, (name, *self.path))

    def __reduce__(self):  # pickled (a Ray worker's error) with its fields, not only its message
        return type(self), (self.field, self.reason, self.causes, self.config_file, self.from_file, self.path)


@dataclass(frozen=True)
class AppliesOnly:
    """One rule of a configuration's ``_applies_only``: ``fields`` shape the run only where
    ``when(config)`` holds.

    Args:
        fields: the settings the rule covers (each is refused on its own).
        when: the condition under which they are used.
        reason: the rest of the message after the field's name, naming other fields in braces
            (``"applies only with {robustness}"``); a function of the config for a message
            that quotes a value.
        causes: the fields ``when`` reads, so that a command can say which of them came from
            a config file.
    """

    fields: tuple[str, ...]
    when: Callable[[Any], bool]
    reason: str | Callable[[Any], str]
    causes: tuple[str, ...] = ()

    def refusal(self, config: Any, field: str) -> UnusedSettingError | None:
        if field not in self.fields or self.when(config):
            return None
        reason = self.reason(config) if callable(self.reason) else self.reason
        return UnusedSettingError(field, reason, self.causes)


def _nested_type(cls: type, name: str) -> type[Config] | None:
    """The :class:`Config` subclass a field holds, if any."""
    hints = typing.get_type_hints(cls)
    hint = hints.get(name)
    candidates = typing.get_args(hint) or (hint,)
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, Config):
            return candidate
    return None


@dataclass
class Config:
    """Base of every ``*Config``: declared per-field validation, ``to_dict`` / ``from_dict``,
    ``replace`` and ``differences``. Subclasses are dataclasses that declare
    ``_parameter_constraints`` for every field (a test checks that none is missing) and may
    add cross-field checks in ``_check``."""

    _parameter_constraints: ClassVar[dict[str, list]] = {}
    #: what error messages call this configuration's fields (e.g. "--" for CLI-facing ones)
    _where: ClassVar[str] = ""
    #: settings that some other settings make pointless (see the module docstring)
    _applies_only: ClassVar[tuple[AppliesOnly, ...]] = ()
    #: refuse, on construction, a field changed from its default that ``_applies_only`` says is unused
    _refuse_unused_changes: ClassVar[bool] = False

    def __post_init__(self) -> None:
        self.validate()

    # -- validation ------------------------------------------------------
    def validate(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            nested = _nested_type(type(self), f.name)
            if nested is not None and isinstance(value, Mapping):
                try:
                    value = nested.from_dict(value)
                except UnusedSettingError as error:
                    raise error.inside(f.name) from None
                setattr(self, f.name, value)
            if isinstance(value, Config):
                continue  # validated when it was built
            constraints = self._parameter_constraints.get(f.name)
            if constraints is None:
                raise TypeError(f"{type(self).__name__}.{f.name} declares no constraint")
            # JSON has no int/float distinction: 3 for a float field is 3.0
            if isinstance(value, int) and not isinstance(value, bool) and any(
                isinstance(c, Interval) and c.kind is float for c in constraints if c is not None
            ):
                value = float(value)
                setattr(self, f.name, value)
            check_value(f.name, value, constraints, self._where)
        self._check()
        if self._refuse_unused_changes:
            unused = self.unused_setting(self.changed_fields())
            if unused is not None:
                raise unused

    def _check(self) -> None:
        """Cross-field checks (override); single fields are declared in ``_parameter_constraints``."""

    def unused_setting(self, given: Iterable[str]) -> UnusedSettingError | None:
        """The first of ``given`` (field names) that ``_applies_only`` says this configuration
        would not use, as the error that says so; ``None`` if there is none. Rules are tried in
        their order, so a class declares first the rules whose cause makes others moot
        (``deep_noise`` unused without a deep decoder, before ``eot`` unused without ``deep_noise``)."""
        wanted = set(given)
        for rule in self._applies_only:
            for name in rule.fields:
                if name in wanted:
                    refusal = rule.refusal(self, name)
                    if refusal is not None:
                        return refusal
        return None

    @classmethod
    def conditional_fields(cls) -> frozenset[str]:
        """The fields some ``_applies_only`` rule covers: those this configuration may refuse as unused."""
        return frozenset(name for rule in cls._applies_only for name in rule.fields)

    def changed_fields(self) -> set[str]:
        """The fields (nested configurations left out) whose value differs from the default; a
        default written out, or written as a tuple, is no change."""
        values = self.to_dict()
        changed = set()
        for f in fields(self):
            if isinstance(getattr(self, f.name), Config):
                continue
            if f.default is not dataclasses.MISSING:
                default = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            else:
                changed.add(f.name)
                continue
            if values[f.name] != _plain(default):
                changed.add(f.name)
        return changed

    # -- conversion ------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.to_dict() if isinstance(value, Config) else _plain(value)
        return out

    def resolved_dict(self) -> dict[str, Any]:
        """``to_dict()`` with the defaults that stand for a value (``None``: the benchmark's
        protocol) filled in: what ``--resume`` compares, so that spelling out a default is no
        change of settings. Configs without such defaults return ``to_dict()``."""
        return self.to_dict()

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls: type[C], values: Any, where: str | None = None) -> C:
        """Build from a mapping (a config file, ``config.json`` of a run); unknown keys are a
        one-line error listing the known ones."""
        label = where or cls.__name__
        if not isinstance(values, Mapping):
            raise ConfigError(f"{label} must be a mapping of option names to values, got {type(values).__name__}")
        known = cls.field_names()
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"unknown {label} option(s) {', '.join(map(str, unknown))}; known: {', '.join(known)}")
        kwargs = dict(values)
        for name, value in values.items():
            nested = _nested_type(cls, name)
            if nested is not None and isinstance(value, Mapping):
                try:
                    kwargs[name] = nested.from_dict(value, where=f"{label}.{name}")
                except UnusedSettingError as error:
                    raise error.inside(name) from None
        return cls(**kwargs)

    def replace(self: C, **changes: Any) -> C:
        return dataclasses.replace(self, **changes)

    def differences(self, other: "Config", ignore: Iterable[str] = ()) -> list[tuple[str, Any, Any]]:
        """``(dotted field name, this value, other value)`` for every field that differs."""
        skip = set(ignore)
        mine, theirs = _flatten(self.to_dict()), _flatten(other.to_dict())
        names = [k for k in dict.fromkeys([*mine, *theirs]) if k not in skip and k.split(".")[0] not in skip]
        return [(k, mine.get(k), theirs.get(k)) for k in names if mine.get(k) != theirs.get(k)]


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _flatten(values: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict) and value and all(isinstance(k, str) for k in value):
            nested = _flatten(value, f"{prefix}{key}.")
            out.update(nested)
        else:
            out[f"{prefix}{key}"] = value
    return out


class _RepeatedKey(Exception):
    def __init__(self, key: Any, line: int | None = None):
        super().__init__(key)
        self.key, self.line = key, line


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads``'s ``object_pairs_hook``: a mapping, refusing a key given twice."""
    values: dict[str, Any] = {}
    for key, value in pairs:
        if key in values:
            raise _RepeatedKey(key)
        values[key] = value
    return values


def _unique_key_loader(yaml: Any) -> type:
    """PyYAML's safe loader, refusing a key given twice in one mapping (merge keys ``<<`` aside)."""
    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    repeated = key in seen
                except TypeError:  # an unhashable key: the constructor reports it
                    continue
                if repeated:
                    raise _RepeatedKey(key, key_node.start_mark.line + 1)
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader


def load_config_file(path: str | os.PathLike, what: str = "config file") -> dict[str, Any]:
    """Read a JSON (or, when PyYAML is installed, YAML) configuration file into a mapping;
    a missing, binary, malformed or non-mapping file, or one that gives a key twice in a
    mapping (the later value would silently win), is a one-line error naming it (as ``what``:
    a recording file is no ``--config`` file)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{what} {path} does not exist")
    if path.is_dir():
        raise DataError(f"{what} {path} is a folder")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{what} {path} is not a text (UTF-8) file") from None
    except OSError as exc:
        raise DataError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ConfigError(f"{path}: reading YAML needs PyYAML (pip install pyyaml), or give a JSON file") from None
        try:
            values = yaml.load(text, Loader=_unique_key_loader(yaml))  # a SafeLoader subclass: safe
        except _RepeatedKey as exc:
            raise DataError(f"{what} {path} gives the key {exc.key!r} twice (line {exc.line}); "
                            f"keep one") from None
        except yaml.YAMLError as exc:
            first = str(exc).splitlines()[0] if str(exc) else "parse error"
            raise DataError(f"{what} {path} is not valid YAML: {first}") from None
    else:
        import json

        try:
            values = json.loads(text, object_pairs_hook=_unique_pairs)
        except _RepeatedKey as exc:
            raise DataError(f"{what} {path} gives the key {exc.key!r} twice in one object; keep one") from None
        except ValueError as exc:
            raise DataError(f"{what} {path} is not valid JSON: {exc}") from None
    if not isinstance(values, dict):
        raise DataError(f"{what} {path} must hold a mapping of option names to values, "
                        f"not a {type(values).__name__}")
    return values


def all_config_classes() -> list[type[Config]]:
    """Every :class:`Config` subclass defined in the package (after importing it)."""
    seen: list[type[Config]] = []
    stack = list(Config.__subclasses__())
    while stack:
        cls = stack.pop()
        if cls not in seen:
            seen.append(cls)
            stack.extend(cls.__subclasses__())
    return seen
