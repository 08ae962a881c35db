"""Reading raw settings: a TOML file and the environment, typed getters, and secrets that never print.

Kept apart from `adapter.config` so every package's settings (e.g. `adapter.kore.settings`) can use it
without importing the whole settings object.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path


class ConfigError(ValueError):
    """A missing or inconsistent setting; the message is one line naming the setting."""


class Secret(str):
    """A string that shows as `***` in repr, str and f-strings; use `.reveal()` to read it."""

    def reveal(self) -> str:
        return str.__str__(self)

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return "***"


def load_mapping(config_file: str | os.PathLike[str] | None = None,
                 environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The raw settings: the config file's keys, overridden by the environment."""
    values: dict[str, str] = {}
    if config_file:
        path = Path(config_file)
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        for key, value in data.items():
            if isinstance(value, (dict, list)):
                raise ConfigError(f"config file {path}: {key.upper()} must be a single value")
            values[key.upper()] = str(value).lower() if isinstance(value, bool) else str(value)
    values.update(os.environ if environ is None else environ)
    return values


class Reader:
    """Typed access to the raw settings with one-line errors that name the setting."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = values

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self.values.get(key, "").strip()
        return value or default

    def secret(self, key: str) -> Secret | None:
        value = self.text(key)
        return Secret(value) if value else None

    def choice(self, key: str, options: tuple[str, ...], default: str) -> str:
        value = (self.text(key) or default).lower()
        if value not in options:
            raise ConfigError(f"{key} must be one of {', '.join(options)}, not {value!r}")
        return value

    def number(self, key: str, default: float, minimum: float = 0.0) -> float:
        raw = self.text(key)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{key} must be a number, not {raw!r}") from None
        if value < minimum:
            raise ConfigError(f"{key} must be at least {minimum:g}, not {raw}")
        return value

    def integer(self, key: str, default: int, minimum: int = 0) -> int:
        value = self.number(key, default, minimum)
        if value != int(value):
            raise ConfigError(f"{key} must be a whole number, not {self.text(key)!r}")
        return int(value)

    def flag(self, key: str, default: bool = False) -> bool:
        raw = (self.text(key) or "").lower()
        if not raw:
            return default
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{key} must be true or false, not {raw!r}")

    def path(self, key: str, default: Path | None = None) -> Path | None:
        raw = self.text(key)
        return Path(raw).expanduser() if raw else default
