"""One settings object, read from a TOML file and the environment (the environment wins).

Every setting has one name, the environment variable's (e.g. `KORE_VOICE_ASR`); a config file
uses the same names as keys. Secrets are wrapped in `Secret` so they never print.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from adapter.audio.limits import AudioLimits

REPO_ROOT = Path(__file__).resolve().parent.parent


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

    def str(self, key: str, default: str | None = None) -> str | None:
        value = self.values.get(key, "").strip()
        return value or default

    def secret(self, key: str) -> Secret | None:
        value = self.str(key)
        return Secret(value) if value else None

    def choice(self, key: str, options: tuple[str, ...], default: str) -> str:
        value = (self.str(key) or default).lower()
        if value not in options:
            raise ConfigError(f"{key} must be one of {', '.join(options)}, not {value!r}")
        return value

    def number(self, key: str, default: float, minimum: float = 0.0) -> float:
        raw = self.str(key)
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
            raise ConfigError(f"{key} must be a whole number, not {self.str(key)!r}")
        return int(value)

    def flag(self, key: str, default: bool = False) -> bool:
        raw = (self.str(key) or "").lower()
        if not raw:
            return default
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{key} must be true or false, not {raw!r}")

    def path(self, key: str, default: Path | None = None) -> Path | None:
        raw = self.str(key)
        return Path(raw).expanduser() if raw else default


ASR_ENGINES = ("auto", "vosk", "pocketsphinx")


@dataclass(frozen=True, slots=True)
class AsrSettings:
    engine: str = "auto"
    vosk_model: Path | None = None
    models_dir: Path = REPO_ROOT / "models"

    @classmethod
    def read(cls, r: Reader) -> AsrSettings:
        return cls(
            engine=r.choice("KORE_VOICE_ASR", ASR_ENGINES, "auto"),
            vosk_model=r.path("KORE_VOICE_VOSK_MODEL"),
            models_dir=r.path("KORE_VOICE_MODELS_DIR", REPO_ROOT / "models"),
        )


@dataclass(frozen=True, slots=True)
class TtsSettings:
    voice: str = "en-us"
    words_per_minute: int = 165
    volume: float = 1.0
    workers: int = 1
    timeout_s: float = 10.0
    cache_bytes: int = 64 * 1024 * 1024
    cache_dir: Path | None = None
    disk_cache_bytes: int = 512 * 1024 * 1024

    @classmethod
    def read(cls, r: Reader) -> TtsSettings:
        volume = r.number("KORE_VOICE_TTS_VOLUME", 1.0)
        if volume > 1.0:
            raise ConfigError(f"KORE_VOICE_TTS_VOLUME must be between 0 and 1, not {volume:g}")
        return cls(
            voice=r.str("KORE_VOICE_TTS_VOICE", "en-us"),
            words_per_minute=r.integer("KORE_VOICE_TTS_RATE", 165, minimum=60),
            volume=volume,
            workers=r.integer("KORE_VOICE_TTS_WORKERS", 1, minimum=1),
            timeout_s=r.number("KORE_VOICE_TTS_TIMEOUT", 10.0, minimum=0.5),
            cache_bytes=r.integer("KORE_VOICE_TTS_CACHE_BYTES", 64 * 1024 * 1024),
            cache_dir=r.path("KORE_VOICE_TTS_CACHE_DIR"),
            disk_cache_bytes=r.integer("KORE_VOICE_TTS_DISK_CACHE_BYTES", 512 * 1024 * 1024),
        )


def read_limits(r: Reader) -> AudioLimits:
    return AudioLimits(
        max_seconds=r.number("KORE_VOICE_MAX_TURN_SECONDS", 60.0, minimum=0.1),
        max_bytes=r.integer("KORE_VOICE_MAX_AUDIO_BYTES", 16 * 1024 * 1024, minimum=1024),
    )


@dataclass(frozen=True, slots=True)
class Settings:
    asr: AsrSettings = field(default_factory=AsrSettings)
    limits: AudioLimits = field(default_factory=AudioLimits)
    tts: TtsSettings = field(default_factory=TtsSettings)

    @classmethod
    def load(cls, config_file: str | os.PathLike[str] | None = None,
             environ: Mapping[str, str] | None = None) -> Settings:
        r = Reader(load_mapping(config_file, environ))
        return cls(asr=AsrSettings.read(r), limits=read_limits(r), tts=TtsSettings.read(r))
