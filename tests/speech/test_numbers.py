"""Numbers in final transcripts: as heard, digit strings, words."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from adapter.audio.pcm import Pcm
from adapter.config import Settings
from adapter.speech.engines import load_recognizer
from adapter.speech.numbers import NumbersRecognizer, as_digits, as_words, in_form
from adapter.speech.recognizer import SILENCE, Transcript, Word

Speak = Callable[..., Pcm]  # the `speak` fixture


@pytest.mark.parametrize("text, digits", [
    ("five five five one two three four", "5551234"),
    ("My account number is 555-1234", "My account number is 5551234"),
    ("My count number is 5-5-1-2-3-4.", "My count number is 551234."),
    ("fine, 1, 2, 3, 4.", "fine, 1234."),
    ("Zero Nine eight seven", "0987"),
    ("10 of clubs", "10 of clubs"),
    ("10, 20 and 30", "10, 20 and 30"),
    ("I want $42.50 and one coffee", "I want $42.50 and 1 coffee"),
    ("no numbers here", "no numbers here"),
])
def test_digits(text: str, digits: str):
    assert as_digits(text) == digits


@pytest.mark.parametrize("text, words", [
    ("I would like to pay $42.50.", "I would like to pay forty-two dollars, fifty cents."),
    ("Call 555-1234", "Call five five five one two three four"),
    ("10 of clubs", "ten of clubs"),
    ("1,200 people", "one thousand, two hundred people"),
    ("2.5 miles", "two point five miles"),
])
def test_words(text: str, words: str):
    assert as_words(text) == words


def test_as_heard_and_silence_stay_as_they_are():
    heard = Transcript("555-1234", (Word("555-1234", 0.1, 0.9, 0.8),), 0.8)
    assert in_form("as-heard", heard) is heard
    assert in_form("digits", SILENCE) is SILENCE
    assert in_form("digits", heard) == Transcript("5551234", heard.words, 0.8)  # words stay as heard


def test_the_setting_reforms_any_engines_final_text(speak: Speak):
    settings = Settings.load(environ={"KORE_VOICE_ASR": "pocketsphinx", "KORE_VOICE_NUMBERS": "digits"})
    recognizer = load_recognizer(settings.asr)
    assert isinstance(recognizer, NumbersRecognizer)
    assert (recognizer.name, recognizer.sample_rate, recognizer.holds_gil) == ("pocketsphinx", 16000, True)
    pcm = speak("one two three four", "en-us+klatt")
    assert recognizer.transcribe(pcm).text == "1234"
    stream = recognizer.open_stream(pcm.rate, ["one two three four", "five six"])
    stream.accept(pcm.data)
    assert stream.partial() == ""
    assert stream.finish().text == "1234"
    assert recognizer.transcribe(Pcm.silence(1.0, 8000)) == SILENCE
