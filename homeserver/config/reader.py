"""Reading a YAML mapping key by key, so that every problem names its key.

A :class:`Section` hands out typed values and remembers which keys were read;
:meth:`Section.finish` then reports the keys nobody asked for.  Keys that Synapse
understands but we do not use are tolerated with a warning (operators bring their
``homeserver.yaml`` along); anything else is a mistake and stops start-up.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

_MISSING: Any = object()
_SIZE = re.compile(r"^\s*(\d+)\s*([KMGT]?)B?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
# Synapse's duration syntax: a number of milliseconds, or a number with a unit.
_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d|w|y)?\s*$")
_DURATION_MS = {
    "ms": 1,
    "s": 1000,
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 604_800_000,
    "y": 31_536_000_000,
}


class ConfigError(Exception):
    """A config problem: ``key`` is the dotted path of the offending key."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}" if key else problem)
        self.key = key
        self.problem = problem


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
    }.get(type(value), type(value).__name__)


class Section:
    def __init__(
        self,
        data: Any,
        path: str,
        *,
        warnings: list[str],
        base_dir: Path,
        tolerated: Collection[str] = (),
    ) -> None:
        if not isinstance(data, dict):
            raise ConfigError(path, f"expected a mapping, got {_type_name(data)}")
        self._data = data
        self._path = path
        self._read: set[str] = set()
        self._warnings = warnings
        self._tolerated = tolerated
        self.base_dir = base_dir

    def key_path(self, key: str) -> str:
        return f"{self._path}.{key}" if self._path else key

    def has(self, key: str) -> bool:
        return key in self._data and self._data[key] is not None

    def _get(self, key: str, default: Any) -> Any:
        self._read.add(key)
        value = self._data.get(key)
        if value is None:
            if default is _MISSING:
                raise ConfigError(self.key_path(key), "is required")
            return default
        return value

    def _typed(self, key: str, default: Any, check: Callable[[Any], bool], wanted: str) -> Any:
        value = self._get(key, default)
        if value is default:
            return value
        if not check(value):
            raise ConfigError(self.key_path(key), f"expected {wanted}, got {_type_name(value)}")
        return value

    def get_str(self, key: str, default: Any = _MISSING) -> Any:
        return self._typed(key, default, lambda v: isinstance(v, str), "a string")

    def get_bool(self, key: str, default: Any = _MISSING) -> Any:
        return self._typed(key, default, lambda v: isinstance(v, bool), "true or false")

    def get_int(
        self,
        key: str,
        default: Any = _MISSING,
        *,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> Any:
        value = self._typed(
            key, default, lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"
        )
        if value is not default:
            self._check_range(key, value, minimum, maximum)
        return value

    def get_number(self, key: str, default: Any = _MISSING, *, minimum: float | None = None) -> Any:
        value = self._typed(
            key,
            default,
            lambda v: isinstance(v, int | float) and not isinstance(v, bool),
            "a number",
        )
        if value is not default:
            self._check_range(key, value, minimum, None)
        return value

    def _check_range(self, key: str, value: float, low: float | None, high: float | None) -> None:
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise ConfigError(self.key_path(key), f"must be {bounds}, got {value}")

    def get_size(self, key: str, default: Any = _MISSING) -> Any:
        """A byte size: an integer, or a string such as ``"50M"`` (K, M, G, T = 1024^n)."""
        value = self._get(key, default)
        if value is default or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        match = _SIZE.match(value) if isinstance(value, str) else None
        if match is None:
            raise ConfigError(
                self.key_path(key), f"expected a size such as 10M or 512K, got {value!r}"
            )
        return int(match.group(1)) * _SIZE_UNITS[match.group(2).upper()]

    def get_duration_ms(self, key: str, default: Any = _MISSING) -> Any:
        """A duration in milliseconds: an integer (ms), or a string such as ``"5m"``."""
        value = self._get(key, default)
        if value is default or value is None:
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        match = _DURATION.match(value) if isinstance(value, str) else None
        if match is None:
            raise ConfigError(
                self.key_path(key), f"expected a duration such as 5m or 1h, got {value!r}"
            )
        return int(match.group(1)) * _DURATION_MS[match.group(2) or "ms"]

    def get_path(self, key: str, default: Any = _MISSING) -> Any:
        """A filesystem path; relative paths are relative to the config file's folder."""
        value = self.get_str(key, default)
        if value is default and not isinstance(value, str):
            return value
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def get_choice(self, key: str, choices: Collection[str], default: Any = _MISSING) -> Any:
        value = self.get_str(key, default)
        if value is not default and value not in choices:
            raise ConfigError(
                self.key_path(key),
                f"must be one of {', '.join(sorted(choices))}, got {value!r}",
            )
        return value

    def get_str_list(self, key: str, default: Any = _MISSING) -> Any:
        value = self._typed(key, default, lambda v: isinstance(v, list), "a list")
        if value is default:
            return value
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise ConfigError(
                    f"{self.key_path(key)}[{index}]", f"expected a string, got {_type_name(item)}"
                )
        return list(value)

    def get_mapping(self, key: str, default: Any = _MISSING) -> Any:
        return self._typed(key, default, lambda v: isinstance(v, dict), "a mapping")

    def get_list(self, key: str, default: Any = _MISSING) -> Any:
        return self._typed(key, default, lambda v: isinstance(v, list), "a list")

    def section(
        self, key: str, *, required: bool = False, tolerated: Collection[str] = ()
    ) -> Section:
        value = self._get(key, _MISSING if required else {})
        return Section(
            value,
            self.key_path(key),
            warnings=self._warnings,
            base_dir=self.base_dir,
            tolerated=tolerated,
        )

    def item(self, key: str, index: int, value: Any, tolerated: Collection[str] = ()) -> Section:
        return Section(
            value,
            f"{self.key_path(key)}[{index}]",
            warnings=self._warnings,
            base_dir=self.base_dir,
            tolerated=tolerated,
        )

    def read_all_of(self, key: str) -> Any:
        """Mark ``key`` as understood and return its raw value (for pass-through keys)."""
        return self._get(key, None)

    @property
    def keys_read(self) -> frozenset[str]:
        return frozenset(self._read)

    def finish(self) -> None:
        """Raise on keys nobody read; warn about tolerated (Synapse-only) ones."""
        known = self._read | set(self._tolerated)
        for key in self._data:
            if not isinstance(key, str):
                raise ConfigError(self.key_path(str(key)), "keys must be strings")
            if key in self._read:
                continue
            if key in self._tolerated:
                self._warnings.append(
                    f"{self.key_path(key)}: a Synapse setting this server does not use; ignored"
                )
                continue
            suggestion = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f" (did you mean '{suggestion[0]}'?)" if suggestion else ""
            raise ConfigError(self.key_path(key), f"unknown key{hint}")
