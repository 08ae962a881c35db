"""Speech engines side by side: word error rate and real-time factor on the same espeak-ng recordings.

    .venv/bin/python bench/asr_compare.py

Recordings are made at run time: sentences in several espeak-ng voices, at 16 kHz PCM and as 8 kHz
μ-law (sox, no dither), plus silence and noise clips that must give "". Engines: PocketSphinx,
Whisper tiny.en beam 1 and beam 5 (our pipeline: VAD gate, segment gate, word timestamps), and the
bare faster-whisper model on the same PCM (beam 1, its defaults) as the baseline for our layers'
cost: ratio = bare seconds / ours (goal >= 0.95). Words are compared lower-cased, without
punctuation, numbers spelled out on both sides (num2words), as in issue 8.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from adapter.audio.decode import decode_audio
from adapter.audio.pcm import Pcm
from adapter.audio.resample import resample
from adapter.speech.numbers import as_words
from adapter.speech.recognizer import Recognizer
from adapter.speech.sphinx_engine import PocketSphinxRecognizer
from adapter.speech.whisper_engine import WhisperRecognizer, bundled_model

SENTENCES = [
    "please transfer me to a customer service agent",
    "I would like to check the balance of my savings account",
    "my account number is five five five one two three four",
]
VOICES = ["en-us", "en-us+f3", "en"]


def record(text: str, voice: str, phone: bool, folder: Path) -> Pcm:
    raw, out = folder / "raw.wav", folder / "out.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(raw), text], check=True, capture_output=True)
    encoding = ["-r", "8000", "-e", "u-law"] if phone else ["-r", "16000", "-e", "signed", "-b", "16"]
    subprocess.run(["sox", "-D", str(raw), *encoding, str(out), "pad", "0.3", "0.3"], check=True, capture_output=True)
    return decode_audio(out.read_bytes())


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", as_words(text).lower())


def edits(ref: list[str], hyp: list[str]) -> int:
    """Word-level Levenshtein distance (substitutions, insertions, deletions)."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


class BareWhisper:
    """faster-whisper alone on PCM at 16 kHz: no gate, no word timestamps, no hints."""

    def __init__(self, model: object) -> None:
        self.model = model

    def text(self, pcm: Pcm) -> str:
        segments, _ = self.model.transcribe(pcm.samples().astype(np.float32) / 32768.0, language="en", beam_size=1,
                                            condition_on_previous_text=False)
        return " ".join(s.text.strip() for s in segments)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        clips = [(text, voice, phone, record(text, voice, phone, Path(tmp)))
                 for phone in (False, True) for voice in VOICES for text in SENTENCES]
    rng = np.random.default_rng(0)
    quiet = [Pcm.silence(2.0, 8000), Pcm.silence(2.0, 16000),
             Pcm.from_array(rng.normal(0, 0.1, 32000), 16000), Pcm.from_array(rng.normal(0, 0.3, 16000), 8000)]

    whisper1 = WhisperRecognizer(bundled_model(), beam_size=1)
    engines: dict[str, Recognizer] = {"pocketsphinx": PocketSphinxRecognizer(), "whisper beam 1": whisper1,
                                      "whisper beam 5": WhisperRecognizer(bundled_model(), beam_size=5)}
    bare = BareWhisper(whisper1.model)
    # the bare model gets PCM already at 16 kHz; our pipeline resamples inside (part of its cost)
    at_16k = {id(pcm): resample(pcm, 16000) for pcm in [*(c[-1] for c in clips), *quiet]}
    runs = {name: (lambda pcm, e=engine: e.transcribe(pcm).text) for name, engine in engines.items()}
    runs["bare faster-whisper (beam 1)"] = lambda pcm: bare.text(at_16k[id(pcm)])

    audio_s = {phone: sum(p.duration_s for _, _, ph, p in clips if ph == phone) for phone in (False, True)}
    print(f"{len(clips)} clips ({len(SENTENCES)} sentences x {len(VOICES)} voices x 16 kHz/8 kHz μ-law), "
          f"{sum(audio_s.values()):.1f} s audio; {len(quiet)} silence/noise clips")
    print(f"{'engine':30} {'WER 16k':>8} {'WER 8k':>8} {'WER all':>8} {'RTF':>6} {'silent ok':>9}")
    seconds: dict[str, float] = {}
    for name, run in runs.items():
        errors, total, spent = {False: 0, True: 0}, {False: 0, True: 0}, 0.0
        for text, _voice, phone, pcm in clips:
            start = time.perf_counter()
            heard = run(pcm)
            spent += time.perf_counter() - start
            errors[phone] += edits(words(text), words(heard))
            total[phone] += len(words(text))
        silent = sum(run(pcm) == "" for pcm in quiet)
        seconds[name] = spent
        wer = {k: errors[k] / total[k] for k in errors}
        print(f"{name:30} {wer[False]:8.1%} {wer[True]:8.1%} {sum(errors.values()) / sum(total.values()):8.1%} "
              f"{spent / sum(audio_s.values()):6.3f} {silent:>4}/{len(quiet)}")
    print(f"ratio bare/ours (whisper beam 1, same PCM): "
          f"{seconds['bare faster-whisper (beam 1)'] / seconds['whisper beam 1']:.2f}")


if __name__ == "__main__":
    main()
