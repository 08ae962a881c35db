"""The engine-neutral parts of the recognizer seam: transcripts, phrase hints, and how a stream
takes its audio (resampled once, chunks of any size, nothing after `finish`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from adapter.audio.pcm import Pcm
from adapter.audio.resample import resample
from adapter.speech.recognizer import (
    SILENCE,
    Recognizer,
    RecognizerStream,
    StreamFinished,
    Transcript,
    Word,
    hint_phrases,
    one_of,
)


class TapeStream(RecognizerStream):
    """Keeps what the engine would get; 'recognises' the number of samples."""

    def __init__(self, rate: int, engine_rate: int) -> None:
        super().__init__(rate, engine_rate)
        self.tape = bytearray()

    def _feed(self, data: bytes) -> None:
        self.tape += data
        self._partial = f"{len(self.tape) // 2} samples"

    def _final(self) -> Transcript:
        return Transcript(self._partial, (), 1.0)


class TapeRecognizer(Recognizer):
    name = "tape"
    sample_rate = 16000

    def __init__(self) -> None:
        self.streams: list[TapeStream] = []

    def open_stream(self, rate: int, hints: Sequence[str] | None = None) -> TapeStream:
        self.streams.append(TapeStream(rate, self.sample_rate))
        return self.streams[-1]


def tone(seconds: float, rate: int) -> Pcm:
    t = np.arange(round(seconds * rate)) / rate
    return Pcm.from_array(0.5 * np.sin(2 * np.pi * 440 * t), rate)


def test_a_transcript_of_words_joins_them_and_averages_confidence():
    words = [Word("check", 0.1, 0.4, 0.9), Word("balance", 0.5, 1.0, 0.5)]
    assert Transcript.of_words(words) == Transcript("check balance", tuple(words), pytest.approx(0.7))
    # a stretch the engine could not place (Vosk's [unk]) weighs in as a word of confidence 0
    assert Transcript.of_words(words, rejected=2).confidence == pytest.approx(0.35)
    assert Transcript.of_words([]) == SILENCE == Transcript("", (), 0.0)


def test_hint_phrases_keep_known_words_lower_cased_without_punctuation_or_repeats():
    known = {"check", "my", "balance", "talk", "to", "an", "agent", "don't", "잔액", "조회"}.__contains__
    hints = ["Check my Balance!", "talk to an agent, please", "CHECK MY BALANCE", "xyzzy", "", "Don't", "잔액 조회"]
    assert hint_phrases(hints, known) == ("check my balance", "talk to an agent", "don't", "잔액 조회")
    assert hint_phrases(None, known) == () == hint_phrases([], known)


def test_with_hints_a_transcript_is_one_whole_phrase_or_nothing():
    phrases = ("check my balance", "talk to an agent")
    heard = Transcript.of_words([Word("check", 0.1, 0.4, 0.9), Word("my", 0.4, 0.5, 0.9),
                                 Word("balance", 0.5, 1.0, 0.8)])
    assert one_of(phrases, heard) is heard
    pieces = Transcript.of_words([Word("talk", 0.1, 0.3, 1.0), Word("to", 0.3, 0.4, 1.0)])
    assert one_of(phrases, pieces) == SILENCE
    assert one_of(phrases, SILENCE) == SILENCE


def test_a_stream_resamples_once_to_the_engine_rate_whatever_the_chunks():
    pcm = tone(1.0, 8000)
    whole, odd = TapeRecognizer().open_stream(8000), TapeRecognizer().open_stream(8000)
    whole.accept(pcm.data)
    for i in range(0, len(pcm.data), 333):  # odd sizes split samples across chunks
        odd.accept(pcm.data[i:i + 333])
    assert whole.finish().text == odd.finish().text == "16000 samples"
    assert whole.tape == odd.tape
    expected = resample(pcm, 16000).samples().astype(float)
    got = np.frombuffer(bytes(whole.tape), "<i2").astype(float)
    assert np.max(np.abs(got - expected)) < 0.01 * 32767  # the same filter, streamed


def test_partial_follows_the_accepted_audio():
    stream = TapeRecognizer().open_stream(16000)
    assert stream.partial() == ""
    stream.accept(bytes(640))
    assert stream.partial() == "320 samples"


def test_a_finished_stream_takes_no_more_calls():
    stream = TapeRecognizer().open_stream(16000)
    stream.accept(bytes(320))
    stream.finish()
    for call in (lambda: stream.accept(b"\0\0"), stream.partial, stream.finish):
        with pytest.raises(StreamFinished, match="finished"):
            call()


def test_a_stream_needs_a_positive_rate():
    with pytest.raises(ValueError, match="positive"):
        TapeRecognizer().open_stream(0)


def test_transcribe_resamples_the_whole_utterance_once():
    recognizer = TapeRecognizer()
    assert recognizer.transcribe(tone(0.5, 8000)).text == "8000 samples"
    assert recognizer.streams[-1].rate == 16000  # the stream got engine-rate audio: no second resampling
    assert recognizer.transcribe(Pcm(b"", 8000)) == SILENCE
