"""Reading a YAML mapping key by key, so that every problem names its key.

A :class:`Section` hands out typed values and remembers which keys were read;
:meth:`Section.finish` then reports the keys nobody asked for.  Keys that Synapse
understands but we do not use are tolerated with a warning (operators bring their
``homeserver.yaml`` along); anything else is a mistake and stops start-up.

Problems are collected, not raised one by one, so that the operator sees all of them
at once: a wrong value with a default is recorded and the default is used to carry
on; a required value that is missing or wrong raises, and :meth:`Section.attempt`
records that and carries on with the next part of the file.  The parser raises
:class:`ConfigErrors` (or the single :class:`ConfigError`) at the end.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Mapping, Sequence
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

    @property
    def lines(self) -> list[str]:
        """One line per problem."""
        return [str(self)]


class ConfigErrors(ConfigError):
    """Several problems, reported together; ``str()`` is one line per problem."""

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        flat = [line for error in errors for line in _flatten(error)]
        super().__init__(flat[0].key, flat[0].problem)
        self.errors = tuple(flat)
        self.args = ("\n".join(str(error) for error in flat),)

    def __str__(self) -> str:
        return str(self.args[0])

    @property
    def lines(self) -> list[str]:
        return [str(error) for error in self.errors]


def _flatten(error: ConfigError) -> tuple[ConfigError, ...]:
    return error.errors if isinstance(error, ConfigErrors) else (error,)


def raise_problems(problems: Sequence[ConfigError]) -> None:
    """Raise the problems found, if any: one as itself, several as :class:`ConfigErrors`."""
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ConfigErrors(problems)


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
        problems: list[ConfigError] | None = None,
        synapse_keys: Mapping[str, Any] | None = None,
    ) -> None:
        """``problems`` collects problems (without it, the first one raises);
        ``synapse_keys`` is the tree of keys Synapse documents for this section, which
        are tolerated (with a warning) here and in the sections below."""
        if not isinstance(data, dict):
            raise ConfigError(path, f"expected a mapping, got {_type_name(data)}")
        self._data = data
        self._path = path
        self._read: set[str] = set()
        self._warnings = warnings
        self._synapse_keys: Mapping[str, Any] = synapse_keys or {}
        self._tolerated = frozenset(tolerated) | frozenset(self._synapse_keys)
        self._problems = problems
        self.base_dir = base_dir

    @property
    def problems(self) -> list[ConfigError] | None:
        return self._problems

    def report(self, error: ConfigError) -> None:
        """Record a problem (or raise it when problems are not being collected)."""
        if self._problems is None:
            raise error
        self._problems.extend(_flatten(error))

    def warn(self, key: str, message: str) -> None:
        self._warnings.append(f"{self.key_path(key)}: {message}" if key else message)

    def attempt(self, func: Callable[[], T], fallback: T) -> T:
        """``func()``, or ``fallback`` once the problem it raised is recorded."""
        try:
            return func()
        except ConfigError as error:
            self.report(error)
            return fallback

    def _fail(self, key: str, problem: str, default: Any) -> Any:
        """A wrong value: raise if the key is required, else record it and use ``default``."""
        error = ConfigError(self.key_path(key), problem)
        if default is _MISSING or self._problems is None:
            raise error
        self._problems.append(error)
        return default

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
            return self._fail(key, f"expected {wanted}, got {_type_name(value)}", default)
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
            return self._check_range(key, value, minimum, maximum, default)
        return value

    def get_number(self, key: str, default: Any = _MISSING, *, minimum: float | None = None) -> Any:
        value = self._typed(
            key,
            default,
            lambda v: isinstance(v, int | float) and not isinstance(v, bool),
            "a number",
        )
        if value is not default:
            return self._check_range(key, value, minimum, None, default)
        return value

    def _check_range(
        self, key: str, value: float, low: float | None, high: float | None, default: Any
    ) -> Any:
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            return self._fail(key, f"must be {bounds}, got {value}", default)
        return value

    def get_size(self, key: str, default: Any = _MISSING, *, positive: bool = False) -> Any:
        """A byte size: an integer, or a string such as ``"50M"`` (K, M, G, T = 1024^n).

        Never negative; ``positive`` refuses 0 too (for limits where 0 makes no sense).
        """
        value = self._get(key, default)
        if value is default:
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            size = value
        else:
            match = _SIZE.match(value) if isinstance(value, str) else None
            if match is None:
                return self._fail(
                    key, f"expected a size such as 10M or 512K, got {value!r}", default
                )
            size = int(match.group(1)) * _SIZE_UNITS[match.group(2).upper()]
        if size < 0 or (positive and size == 0):
            wanted = "a positive size" if positive else "a size of at least 0"
            return self._fail(key, f"must be {wanted}, got {value!r}", default)
        return size

    def get_duration_ms(self, key: str, default: Any = _MISSING, *, positive: bool = False) -> Any:
        """A duration in milliseconds: an integer (ms), or a string such as ``"5m"``.

        Never negative; ``positive`` refuses 0 too.
        """
        value = self._get(key, default)
        if value is default or value is None:
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            duration = value
        else:
            match = _DURATION.match(value) if isinstance(value, str) else None
            if match is None:
                return self._fail(
                    key, f"expected a duration such as 5m or 1h, got {value!r}", default
                )
            duration = int(match.group(1)) * _DURATION_MS[match.group(2) or "ms"]
        if duration < 0 or (positive and duration == 0):
            wanted = "a positive duration" if positive else "a duration of at least 0"
            return self._fail(key, f"must be {wanted}, got {value!r}", default)
        return duration

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
            return self._fail(
                key, f"must be one of {', '.join(sorted(choices))}, got {value!r}", default
            )
        return value

    def get_str_list(self, key: str, default: Any = _MISSING) -> Any:
        value = self._typed(key, default, lambda v: isinstance(v, list), "a list")
        if value is default:
            return value
        for index, item in enumerate(value):
            if not isinstance(item, str):
                return self._fail(
                    f"{key}[{index}]", f"expected a string, got {_type_name(item)}", default
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
        if not isinstance(value, dict) and self._problems is not None:
            # Recorded; the keys inside are then checked as if the section were empty.
            self.report(
                ConfigError(self.key_path(key), f"expected a mapping, got {_type_name(value)}")
            )
            value = {}
        return Section(
            value,
            self.key_path(key),
            warnings=self._warnings,
            base_dir=self.base_dir,
            tolerated=tolerated,
            problems=self._problems,
            synapse_keys=self._synapse_keys.get(key),
        )

    def item(self, key: str, index: int, value: Any, tolerated: Collection[str] = ()) -> Section:
        return Section(
            value,
            f"{self.key_path(key)}[{index}]",
            warnings=self._warnings,
            base_dir=self.base_dir,
            tolerated=tolerated,
            problems=self._problems,
            synapse_keys=self._synapse_keys.get(key),
        )

    def read_all_of(self, key: str) -> Any:
        """Mark ``key`` as understood and return its raw value (for pass-through keys)."""
        return self._get(key, None)

    @property
    def keys_read(self) -> frozenset[str]:
        return frozenset(self._read)

    def finish(self) -> None:
        """Report keys nobody read (all of them); warn about tolerated (Synapse-only) ones."""
        known = self._read | set(self._tolerated)
        for key in self._data:
            if not isinstance(key, str):
                self.report(ConfigError(self.key_path(str(key)), "keys must be strings"))
                continue
            if key in self._read:
                continue
            if key in self._tolerated:
                self.warn(key, "a Synapse setting this server does not use; ignored")
                continue
            suggestion = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f" (did you mean '{suggestion[0]}'?)" if suggestion else ""
            self.report(ConfigError(self.key_path(key), f"unknown key{hint}"))
