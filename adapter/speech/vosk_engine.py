"""Vosk (Kaldi) speech recognition: one shared model per process, one KaldiRecognizer per stream.

Phrase hints become a Vosk grammar (a small language model over just those phrases) plus
"[unk]", which takes the speech that is none of them, when the model's vocabulary has it; the
transcript is then one whole phrase or "" (`one_of`). Measured on espeak-ng Korean with
vosk-model-small-ko, which has no "[unk]": of a 6-option menu, 5 exact at 16 kHz (1 in free
dictation) and 3 over 8 kHz μ-law (0); other speech gave "" for 6 of 7 phrases at 16 kHz and
7 of 7 at 8 kHz. A grammar also decodes some 25 times faster than free dictation.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import vosk

from adapter.modelstore.install import model_sample_rate
from adapter.speech.recognizer import (
    Recognizer,
    RecognizerStream,
    Transcript,
    Word,
    hint_phrases,
    one_of,
)

#: the word Vosk gives for speech outside a grammar, when the model has it (most do; the small
#: Korean model does not, so there a grammar cannot say "none of these")
UNKNOWN = "[unk]"
#: Kaldi's default when conf/mfcc.conf has no --sample-frequency
DEFAULT_RATE = 16000

_models: dict[Path, vosk.Model] = {}
_models_lock = threading.Lock()


def model_rate(path: Path) -> int:
    """The rate the model decodes at, from conf/mfcc.conf.

    Vosk downsamples higher-rate audio itself but refuses audio below the model's rate
    (specs/telephony.md §9.3), so telephony audio is upsampled to this rate first.
    """
    return model_sample_rate(path) or DEFAULT_RATE


def shared_model(path: Path) -> vosk.Model:
    """The process's one `vosk.Model` for `path` (loading takes seconds and hundreds of MB)."""
    path = path.resolve()
    with _models_lock:
        if path not in _models:
            vosk.SetLogLevel(-1)  # Kaldi logs every model load and grammar at INFO otherwise
            _models[path] = vosk.Model(str(path))  # raises Exception if the folder is no model
        return _models[path]


class VoskRecognizer(Recognizer):
    """Vosk with a model folder, e.g. one from `kore-voice models download`."""

    name = "vosk"

    def __init__(self, model_path: str | Path) -> None:
        self.model_path = Path(model_path)
        self.model = shared_model(self.model_path)
        self.sample_rate = model_rate(self.model_path)
        self.has_unknown = self._known(UNKNOWN)

    def _known(self, word: str) -> bool:
        return self.model.vosk_model_find_word(word) >= 0

    def phrases(self, hints: Sequence[str] | None) -> tuple[str, ...]:
        """The hints as the model can take them: only words in its vocabulary (Vosk would warn
        about any other and leave it out)."""
        return hint_phrases(hints, self._known)

    def grammar(self, phrases: Sequence[str]) -> str:
        """The JSON grammar Vosk takes for `phrases`."""
        return json.dumps([*phrases, UNKNOWN] if self.has_unknown else list(phrases), ensure_ascii=False)

    def open_stream(self, rate: int, hints: Sequence[str] | None = None) -> RecognizerStream:
        return VoskStream(self, rate, self.phrases(hints))


class VoskStream(RecognizerStream):
    """One utterance. Vosk cuts a stream at the pauses it hears (endpoints) and starts over; the
    stream keeps each piece, so the transcript covers everything accepted. With hints (`phrases`)
    the transcript is one of them or "" (`one_of`); free dictation when there are none."""

    def __init__(self, recognizer: VoskRecognizer, rate: int, phrases: tuple[str, ...]) -> None:
        super().__init__(rate, recognizer.sample_rate)
        self._phrases = phrases
        args: tuple[Any, ...] = (recognizer.grammar(phrases),) if phrases else ()
        self._kaldi = vosk.KaldiRecognizer(recognizer.model, recognizer.sample_rate, *args)
        self._kaldi.SetWords(True)
        self._pieces: list[dict[str, Any]] = []

    def _feed(self, data: bytes) -> None:
        if self._kaldi.AcceptWaveform(data):
            self._pieces.append(json.loads(self._kaldi.Result()))
            live = ""
        else:
            live = json.loads(self._kaldi.PartialResult()).get("partial", "")
        heard = [*(piece.get("text", "") for piece in self._pieces), live]
        self._partial = " ".join(w for text in heard for w in text.split() if w != UNKNOWN)

    def _final(self) -> Transcript:
        self._pieces.append(json.loads(self._kaldi.FinalResult()))
        found = [w for piece in self._pieces for w in piece.get("result", ())]
        words = [Word(w["word"], float(w["start"]), float(w["end"]), float(w["conf"]))
                 for w in found if w["word"] != UNKNOWN]
        transcript = Transcript.of_words(words, rejected=len(found) - len(words))
        return one_of(self._phrases, transcript) if self._phrases else transcript
