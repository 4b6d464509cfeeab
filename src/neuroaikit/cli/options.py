"""Parsers for ``KEY=VALUE`` style options shared by several commands."""

from __future__ import annotations

import json

from ..errors import ConfigError


def parse_value(text: str):
    """JSON if it parses (numbers, true/false, lists), else the plain string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_assignments(items: list[str] | None, what: str, keep_strings: bool = False) -> dict:
    """``["a=1", "b=x"]`` to ``{"a": 1, "b": "x"}``; the key ends at the first ``=``."""
    result = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{what} must look like NAME=VALUE, got {item!r}")
        result[key.strip()] = value.strip() if keep_strings else parse_value(value.strip())
    return result
