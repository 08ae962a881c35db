"""Audio made at test time for the codec and VAD tests: espeak-ng speech, sox and ffmpeg files."""

from __future__ import annotations

import subprocess
import wave
from collections.abc import Callable
from pathlib import Path

import pytest

from adapter.audio.pcm import Pcm

PHRASE = "check my balance please"


def run(*cmd: str | Path) -> None:
    subprocess.run([str(c) for c in cmd], check=True, capture_output=True)


def read_with_stdlib(path: Path) -> Pcm:
    """Read a 16-bit mono WAV with the standard library, an oracle independent of ours."""
    with wave.open(str(path)) as w:
        assert (w.getsampwidth(), w.getnchannels()) == (2, 1)
        return Pcm(w.readframes(w.getnframes()), w.getframerate())


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("audio")


@pytest.fixture(scope="session")
def speech_wav(media_dir: Path) -> Path:
    """espeak-ng saying PHRASE: 16-bit mono WAV at 22050 Hz, about 1.5 s."""
    path = media_dir / "speech.wav"
    run("espeak-ng", "-w", path, PHRASE)
    return path


@pytest.fixture(scope="session")
def speech(speech_wav: Path) -> Pcm:
    return read_with_stdlib(speech_wav)


@pytest.fixture(scope="session")
def ffmpeg_file(media_dir: Path, speech_wav: Path) -> Callable[..., bytes]:
    """`ffmpeg_file("x.ogg", "-c:a", "libopus")`: the speech converted by ffmpeg, as bytes."""
    def convert(name: str, *args: str) -> bytes:
        out = media_dir / name
        if not out.exists():
            run("ffmpeg", "-v", "error", "-y", "-i", speech_wav, *args, out)
        return out.read_bytes()
    return convert


@pytest.fixture(scope="session")
def sox_file(media_dir: Path) -> Callable[..., Path]:
    """`sox_file("x.wav", "-r", "8000", ...)`: a 0.5 s 440 Hz sine made by sox with those options."""
    def make(name: str, *options: str) -> Path:
        out = media_dir / name
        if not out.exists():
            run("sox", "-n", *options, out, "synth", "0.5", "sine", "440", "vol", "0.5")
        return out
    return make
