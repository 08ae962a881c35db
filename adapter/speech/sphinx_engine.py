"""PocketSphinx speech recognition with the US-English model inside the `pocketsphinx` wheel.

Choices, measured on espeak-ng speech in five voices at 16 kHz and 8 kHz μ-law (the tests use
`en-us+klatt`, which this model hears best):

- Whole-utterance decoding with batch cepstral mean normalisation. PocketSphinx's live
  normalisation starts from a fixed mean and needs seconds to adapt; on short turns it lost
  most words (en-us+f3, 8 kHz: 2 of 35 words against 21 in batch). So a stream collects its
  audio and decodes it at `finish`; `partial` stays "".
- Each decode starts from fresh feature extraction (`reinit_feat`): the decoder's noise
  removal otherwise carries its estimate over from the previous utterance, so a result
  depended on which pooled decoder served the call before.
- A little deterministic dither (`dithered`), on every sample of an utterance that holds digital
  silence (a run of exact zeros of 10 ms or more: padding, muted keypad tones, μ-law line silence),
  whose log energy throws the batch mean off (free dictation of the test voice lost most words
  without it). Audio without such runs (a noisy line) goes in untouched, as bare PocketSphinx takes
  it: dither there cost words (`bench/transcribe.py --accuracy`: 8 kHz noisy 79.4 % WER against
  64.7 %). Dithering only the runs of zeros turned a streamed "check my balance" into nothing
  (tests/speech/test_process_recognizer.py).
- Phrase hints become a JSGF grammar, `public <hint> = check my balance | talk to an agent;`:
  88 of 100 menu phrases exact, against 7 in free dictation. Keyword spotting was tried and
  rejected: no threshold told short menu words from other speech. A grammar forces the audio
  onto some phrase, so a result counts only if it is exactly one phrase (`one_of`) and fits the
  audio well enough; otherwise it is "" (the caller said something else). When no phrase fits
  to the end, the decoder reaches no final state and falls back to a partial path ("talk to
  an"). When one does, `hyp().score` (the path's score against the best state of each frame,
  given as a probability) tells a fit from a forced match: per second of audio, hint phrases
  scored 0.72-0.89 (median 0.81) and forced matches of other speech 0.64-0.86 (median 0.69);
  `MIN_HINT_FIT` = 0.72 kept 53 of 54 and dropped 21 of 29. In all, 63 of 80 phrases outside
  the hints gave "".
- The model is wideband: 8 kHz phone audio, upsampled, loses words (the default voice's "check
  balance" is missed there, though heard at 16 kHz).
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
    WholeUtteranceStream,
    Word,
    hint_phrases,
    one_of,
)

#: the rate the bundled en-us acoustic model was trained at
SAMPLE_RATE = 16000
#: the least per-second path score a hint phrase needs to count as heard (see the module docstring)
MIN_HINT_FIT = 0.72
#: the shortest run of exact zeros taken for digital silence (then the utterance is dithered)
MIN_SILENCE_S = 0.01
_HINTS = "hints"
_ALTERNATE = re.compile(r"\(\d+\)$")  # "the(2)": the second pronunciation of "the"


def is_word(token: str) -> bool:
    """Words, not the decoder's markers: <s>, </s>, <sil>, [NOISE], [SPEECH]."""
    return not token.startswith(("<", "[", "+"))


def has_digital_silence(pcm: Pcm) -> bool:
    """Whether the audio holds a run of exact zeros lasting `MIN_SILENCE_S` or more."""
    zero = np.concatenate(([False], pcm.samples() == 0, [False]))
    edges = np.flatnonzero(zero[1:] != zero[:-1])
    return bool((edges[1::2] - edges[::2] >= MIN_SILENCE_S * pcm.rate).any())


def dithered(pcm: Pcm) -> bytes:
    """The samples plus noise of about one step, the same noise for every utterance (PocketSphinx's
    own `dither` draws from a generator that runs on from one utterance to the next, so a result
    would depend on which pooled decoder served the call before); audio without digital silence as is."""
    if not has_digital_silence(pcm):
        return pcm.data
    noise = np.round(np.random.default_rng(0).normal(0.0, 1.0, pcm.frames))
    return np.clip(pcm.samples() + noise, -32768, 32767).astype("<i2").tobytes()


def jsgf(phrases: Sequence[str]) -> str:
    return f"#JSGF V1.0;\ngrammar hints;\npublic <hint> = {' | '.join(phrases)};\n"


def heard_speech(pcm: Pcm) -> bool:
    return bool(VoiceActivity(pcm.rate).speech_segments(pcm))


class PocketSphinxRecognizer(Recognizer):
    """The offline English default: no model download needed."""

    name = "pocketsphinx"
    sample_rate = SAMPLE_RATE
    holds_gil = True
    whole_utterance = True

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
        return WholeUtteranceStream(self.decode, rate, SAMPLE_RATE, hints)

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
                decoder.reinit_feat()  # no noise estimate carried over from the last utterance
                decoder.start_utt()
                decoder.process_raw(dithered(pcm), full_utt=True)
                decoder.end_utt()
                frames_per_s = decoder.config["frate"]
                words = [Word(_ALTERNATE.sub("", seg.word), seg.start_frame / frames_per_s,
                              (seg.end_frame + 1) / frames_per_s, min(1.0, max(0.0, seg.prob)))
                         for seg in decoder.seg() or () if is_word(seg.word)]  # None: no path at all
                hyp = decoder.hyp()
                fit = hyp.score ** (frames_per_s / max(1, decoder.n_frames())) if hyp else 0.0
            finally:
                if phrases:
                    decoder.activate_search()  # back to the language model
                    decoder.remove_search(_HINTS)
        transcript = Transcript.of_words(words)
        if not phrases:
            return transcript
        return one_of(phrases, transcript) if fit >= MIN_HINT_FIT else SILENCE
