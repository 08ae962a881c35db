"""PocketSphinx speech recognition with the US-English model inside the `pocketsphinx` wheel.

Choices, measured on espeak-ng speech (tests/speech/test_sphinx_engine.py):

- Whole-utterance decoding with batch cepstral mean normalisation. PocketSphinx's live
  normalisation starts from a fixed mean and needs seconds to adapt; on short turns it lost
  most words (8 kHz μ-law: 2 of 35 words against 21 in batch). So a stream collects its audio
  and decodes it at `finish`; `partial` stays "".
- Phrase hints become a JSGF grammar, `public <hint> = check my balance | talk to an agent;`.
  Keyword spotting was tried and rejected: no threshold told short menu words from other speech.
  A grammar always forces some path, but when no phrase fits the audio to its end the decoder
  reaches no final state and falls back to a partial one ("talk to an"); such a result, anything
  that is not exactly one hint phrase, is returned as "" rather than as a forced match.
- Audio without speech (webrtcvad) gives "" without decoding: digital silence otherwise comes
  out as a word ("dog").
- Confidence: each word's posterior probability from the decoder's lattice (`Segment.prob`);
  the transcript's is their mean.

A decoder is not thread-safe and holds its own copy of the model (about 90 MB), so decoders
are pooled: each decode borrows one, and a new one is made only when all are busy.
"""

from __future__ import annotations

import queue
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import pocketsphinx

from adapter.audio.pcm import Pcm
from adapter.audio.vad import VoiceActivity
from adapter.speech.recognizer import (
    SILENCE,
    Recognizer,
    RecognizerStream,
    Transcript,
    Word,
    hint_phrases,
)

#: the rate the bundled en-us acoustic model was trained at
SAMPLE_RATE = 16000
_HINTS = "hints"
_ALTERNATE = re.compile(r"\(\d+\)$")  # "the(2)": the second pronunciation of "the"


def is_word(token: str) -> bool:
    """Words, not the decoder's markers: <s>, </s>, <sil>, [NOISE], [SPEECH]."""
    return not token.startswith(("<", "[", "+"))


def jsgf(phrases: Sequence[str]) -> str:
    return f"#JSGF V1.0;\ngrammar hints;\npublic <hint> = {' | '.join(phrases)};\n"


def heard_speech(pcm: Pcm) -> bool:
    return bool(VoiceActivity(pcm.rate).speech_segments(pcm))


def dithered(pcm: Pcm) -> bytes:
    """The samples plus noise of about one step, the same noise for every utterance.

    Digital silence (padding, muted keypad tones, synthetic speech) has frames of exact zeros
    whose log energy throws the batch mean off. PocketSphinx's own `dither` does this too, but
    its random generator runs on from one utterance to the next, so a result would depend on
    which pooled decoder served the call before.
    """
    noise = np.round(np.random.default_rng(0).normal(0.0, 1.0, pcm.frames))
    return np.clip(pcm.samples() + noise, -32768, 32767).astype("<i2").tobytes()


class PocketSphinxRecognizer(Recognizer):
    """The offline English default: no model download needed."""

    name = "pocketsphinx"
    sample_rate = SAMPLE_RATE

    def __init__(self) -> None:
        self._idle: queue.SimpleQueue[pocketsphinx.Decoder] = queue.SimpleQueue()
        self._idle.put(self._new_decoder())  # load now, so a broken install fails at start-up

    @staticmethod
    def _new_decoder() -> pocketsphinx.Decoder:
        return pocketsphinx.Decoder(samprate=SAMPLE_RATE, cmn="batch", loglevel="FATAL")

    @contextmanager
    def _decoder(self) -> Iterator[pocketsphinx.Decoder]:
        try:
            decoder = self._idle.get_nowait()
        except queue.Empty:
            decoder = self._new_decoder()
        yield decoder
        self._idle.put(decoder)  # only after a clean decode: a failed one may have left it mid-utterance

    def open_stream(self, rate: int, hints: Sequence[str] | None = None) -> RecognizerStream:
        return PocketSphinxStream(self, rate, hints)

    def decode(self, pcm: Pcm, hints: Sequence[str] | None) -> Transcript:
        """One whole utterance at `SAMPLE_RATE`."""
        if not heard_speech(pcm):
            return SILENCE
        with self._decoder() as decoder:
            phrases = hint_phrases(hints, lambda w: decoder.lookup_word(w) is not None)
            if phrases:
                decoder.add_jsgf_string(_HINTS, jsgf(phrases))
                decoder.activate_search(_HINTS)
            try:
                decoder.start_utt()
                decoder.process_raw(dithered(pcm), full_utt=True)
                decoder.end_utt()
                frame_s = 1 / decoder.config["frate"]
                words = [Word(_ALTERNATE.sub("", seg.word), seg.start_frame * frame_s,
                              (seg.end_frame + 1) * frame_s, min(1.0, max(0.0, seg.prob)))
                         for seg in decoder.seg() or () if is_word(seg.word)]  # None: no path at all
            finally:
                if phrases:
                    decoder.activate_search()  # back to the language model
                    decoder.remove_search(_HINTS)
        transcript = Transcript.of_words(words)
        if phrases and transcript.text not in phrases:
            return SILENCE  # no final state reached: the caller said none of the phrases
        return transcript


class PocketSphinxStream(RecognizerStream):
    """Collects the utterance (at 16 kHz: 32 kB a second) and decodes it at `finish`."""

    def __init__(self, recognizer: PocketSphinxRecognizer, rate: int, hints: Sequence[str] | None) -> None:
        super().__init__(rate, SAMPLE_RATE)
        self._recognizer = recognizer
        self._hints = tuple(hints or ())
        self._audio = bytearray()

    def _feed(self, data: bytes) -> None:
        self._audio += data

    def _final(self) -> Transcript:
        return self._recognizer.decode(Pcm(bytes(self._audio), SAMPLE_RATE), self._hints)
