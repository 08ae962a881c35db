"""The form numbers take in a final transcript (KORE_VOICE_NUMBERS): as heard, digit strings, or words.

Engines write numbers their own way: Whisper "555-1234", "$42.50", "1, 2, 3, 4"; PocketSphinx and
Vosk "five five five". Kore.ai's language understanding takes numerals, and an account number said
digit by digit should reach the bot as one digit string (`digits`); `words` spells every number out
(num2words), for bots whose entities were trained on words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from num2words import num2words

from adapter.speech.recognizer import Recognizer, RecognizerStream, Transcript
from adapter.speech.settings import NUMBER_FORMS

_DIGIT_WORDS = {w: str(i) for i, w in enumerate(
    ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"))}
_DIGIT_WORD = re.compile(r"\b(" + "|".join(_DIGIT_WORDS) + r")\b", re.IGNORECASE)
# digits said one by one or grouped: "5 5 5 1 2 3 4", "555-1234", "1, 2, 3, 4"
_DIGIT_RUN = re.compile(r"\b\d+(?:[ ,-]+\d+)*\b")
_SPACED = re.compile(r"[ ,-]+")
_MONEY = re.compile(r"\$(\d[\d,]*)(?:\.(\d\d))?\b")
_GROUPED = re.compile(r"\b\d+(?:-\d+)+\b")  # a phone or account number: spelled digit by digit
_NUMBER = re.compile(r"\b\d[\d,]*(?:\.\d+)?\b")


def as_digits(text: str) -> str:
    """Digit words as digits, and digits said one by one (or in hyphenated groups) run together:
    "five five five one two three four" and "555-1234" → "5551234"; "10 of clubs" stays."""
    text = _DIGIT_WORD.sub(lambda m: _DIGIT_WORDS[m.group().lower()], text)
    return _DIGIT_RUN.sub(lambda m: _SPACED.sub("", m.group()) if _is_digit_run(m.group()) else m.group(), text)


def _is_digit_run(run: str) -> bool:
    """Single digits in a row, or hyphenated groups; not "10, 20" (numbers in a list)."""
    parts = _SPACED.split(run)
    return len(parts) > 1 and (all(len(p) == 1 for p in parts) or "-" in run)


def as_words(text: str) -> str:
    """Every number in words: "$42.50" → "forty-two dollars, fifty cents", "555-1234" → "five five
    five one two three four", "10 of clubs" → "ten of clubs"."""
    text = _MONEY.sub(lambda m: num2words(float(m.group(1).replace(",", "") + "." + (m.group(2) or "00")),
                                          to="currency", currency="USD"), text)
    text = _GROUPED.sub(lambda m: " ".join(num2words(int(d)) for d in m.group() if d.isdigit()), text)
    return _NUMBER.sub(lambda m: num2words(float(m.group().replace(",", "")) if "." in m.group()
                                           else int(m.group().replace(",", ""))), text)


def in_form(form: str, transcript: Transcript) -> Transcript:
    """`transcript` with its text's numbers in `form` (one of `NUMBER_FORMS`); words stay as heard."""
    if form == "as-heard" or not transcript.text:
        return transcript
    text = as_digits(transcript.text) if form == "digits" else as_words(transcript.text)
    return Transcript(text, transcript.words, transcript.confidence)


class NumbersRecognizer(Recognizer):
    """`engine` with its final transcripts' numbers in `form`."""

    def __init__(self, engine: Recognizer, form: str) -> None:
        if form not in NUMBER_FORMS:
            raise ValueError(f"numbers are one of {', '.join(NUMBER_FORMS)}, not {form!r}")
        self.engine, self.form = engine, form
        self.name, self.sample_rate, self.holds_gil = engine.name, engine.sample_rate, engine.holds_gil
        self.whole_utterance = engine.whole_utterance

    def open_stream(self, rate: int, hints: Sequence[str] | None = None) -> RecognizerStream:
        return NumbersStream(self.engine.open_stream(rate, hints), self.form)


class NumbersStream(RecognizerStream):
    """Passes the audio on to the engine's own stream (which resamples it) and reforms its final text."""

    def __init__(self, stream: RecognizerStream, form: str) -> None:
        super().__init__(stream.rate, stream.rate)
        self._stream, self._form = stream, form

    def partial(self) -> str:
        self._check_open()
        return self._stream.partial()

    def _feed(self, data: bytes) -> None:
        self._stream.accept(data)

    def _final(self) -> Transcript:
        return in_form(self._form, self._stream.finish())
