"""The speech-to-text seam: transcripts, and one engine-neutral interface for streams and whole utterances.

Recognizers block (they are CPU-bound): callers run `open_stream`, `accept`, `finish` and
`transcribe` in an executor, never on the event loop. One recognizer serves every call of the
process from any thread: it holds the shared model, and each stream gets its own decoder. A
stream belongs to one caller at a time; `partial` only reads what the last `accept` left, so it
is cheap enough to call on the event loop.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from adapter.audio.pcm import Pcm
from adapter.audio.resample import StreamResampler, resample


@dataclass(frozen=True, slots=True)
class Word:
    """One recognised word; times are seconds from the start of the stream or utterance."""

    text: str
    start_s: float
    end_s: float
    confidence: float


@dataclass(frozen=True, slots=True)
class Transcript:
    """What was said: `text` is "" for silence (or speech outside the phrase hints); confidence 0..1."""

    text: str
    words: tuple[Word, ...]
    confidence: float

    @classmethod
    def of_words(cls, words: Iterable[Word], rejected: int = 0) -> Transcript:
        """Text and confidence from the words; `rejected` counts stretches the engine heard as
        speech outside its vocabulary or hints, each weighing in as a word of confidence 0."""
        words = tuple(words)
        count = len(words) + rejected
        confidence = sum(w.confidence for w in words) / count if count else 0.0
        return cls(" ".join(w.text for w in words), words, confidence)


SILENCE = Transcript("", (), 0.0)

_TOKEN = re.compile(r"[\w']+")


def hint_phrases(hints: Sequence[str] | None, known: Callable[[str], bool]) -> tuple[str, ...]:
    """The phrase hints an engine can use: lower-cased, punctuation dropped, each word one the
    engine's vocabulary has (`known`). Unknown words are left out of their phrase (as Vosk itself
    does); phrases left empty, and repeats, are dropped."""
    phrases: dict[str, None] = {}
    for hint in hints or ():
        words = [w for w in _TOKEN.findall(hint.lower()) if known(w)]
        if words:
            phrases[" ".join(words)] = None
    return tuple(phrases)


def one_of(phrases: Sequence[str], transcript: Transcript) -> Transcript:
    """`transcript` if it is exactly one of the hint `phrases`, else `SILENCE`.

    An engine held to a few phrases strings pieces of them together ("talk to an", "네 상담원
    취소") for speech that is none of them; an IVR turn answers with one option or none.
    """
    return transcript if transcript.text in phrases else SILENCE


class StreamFinished(RuntimeError):
    """A call on a recognizer stream after its `finish`."""


class RecognizerStream(ABC):
    """One utterance fed live: 16-bit little-endian mono PCM at the stream's rate, in chunks of
    any size. The audio is resampled once, as it comes, to the rate the engine wants."""

    def __init__(self, rate: int, engine_rate: int) -> None:
        if rate <= 0:
            raise ValueError(f"sample rate must be positive, got {rate}")
        self.rate = rate
        self._resampler = StreamResampler(rate, engine_rate)
        self._odd = b""  # a chunk may end half-way through a sample
        self._partial = ""
        self._finished = False

    def accept(self, data: bytes) -> None:
        self._check_open()
        data = self._odd + data
        cut = len(data) - len(data) % 2
        self._odd = data[cut:]
        if cut:
            self._feed(self._resampler.process(data[:cut]))

    def partial(self) -> str:
        """The text so far (may change until `finish`; "" from engines that decode at the end)."""
        self._check_open()
        return self._partial

    def finish(self) -> Transcript:
        """The final transcript of everything accepted; the stream takes no more calls."""
        self._check_open()
        self._finished = True
        tail = self._resampler.process(b"", last=True)
        if tail:
            self._feed(tail)
        return self._final()

    def _check_open(self) -> None:
        if self._finished:
            raise StreamFinished("this recognizer stream is finished; open a new one")

    @abstractmethod
    def _feed(self, data: bytes) -> None:
        """Take PCM at the engine's rate (and update `_partial` if the engine can)."""

    @abstractmethod
    def _final(self) -> Transcript:
        """Decode what is left and return the whole utterance's transcript."""


class Recognizer(ABC):
    """A speech engine for the whole process (see the module docstring for threads).

    `hints` are expected phrases, e.g. the options of an IVR menu. An engine that gets them
    listens for those phrases only, which recognises them far better than free dictation; the
    transcript is then one whole phrase, as `hint_phrases` spells it (lower case, words the
    engine knows), or "" for speech that is none of them (`one_of`). Whisper instead hears
    everything and maps what it heard to the closest hint, keeping its own text when none is close.
    """

    #: what `kore-voice transcribe` and the health check show
    name: str
    #: the rate the engine decodes at; audio at other rates is resampled once to it
    sample_rate: int
    #: whether decoding keeps the GIL (the server then decodes in worker processes)
    holds_gil: bool = False
    #: whether the engine decodes finished utterances only (its streams just collect audio, and the
    #: conversation hands it whole utterances instead)
    whole_utterance: bool = False

    @abstractmethod
    def open_stream(self, rate: int, hints: Sequence[str] | None = None) -> RecognizerStream:
        """A stream for one live utterance at `rate` Hz."""

    def transcribe(self, pcm: Pcm, hints: Sequence[str] | None = None) -> Transcript:
        """A whole utterance in one step, resampled once to the engine's rate."""
        if not pcm.data:
            return SILENCE
        stream = self.open_stream(self.sample_rate, hints)
        stream.accept(resample(pcm, self.sample_rate).data)
        return stream.finish()


class WholeUtteranceStream(RecognizerStream):
    """For engines that decode a finished utterance: collects the audio (at 16 kHz, 32 kB a second)
    and hands it to `decode(pcm, hints)` at `finish`."""

    def __init__(self, decode: Callable[[Pcm, Sequence[str]], Transcript], rate: int, engine_rate: int,
                 hints: Sequence[str] | None) -> None:
        super().__init__(rate, engine_rate)
        self._decode = decode
        self._engine_rate = engine_rate
        self._hints = tuple(hints or ())
        self._audio = bytearray()

    def _feed(self, data: bytes) -> None:
        self._audio += data

    def _final(self) -> Transcript:
        return self._decode(Pcm(bytes(self._audio), self._engine_rate), self._hints)
