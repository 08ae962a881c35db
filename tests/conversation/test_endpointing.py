"""Endpointing on real espeak-ng speech: where utterances start and end, in audio time."""

import subprocess
from pathlib import Path

import numpy as np
import pytest

from adapter.audio.decode import decode_audio
from adapter.audio.pcm import Pcm
from adapter.audio.resample import resample
from adapter.conversation.endpointing import Endpointer, EndpointSettings


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> Pcm:
    path = Path(tmp_path_factory.mktemp("ep")) / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "140", "-w", str(path), "check my balance please"], check=True)
    pcm = resample(decode_audio(path.read_bytes()), 8000)
    samples = pcm.samples()
    voiced = np.flatnonzero(np.abs(samples) > 300)
    return Pcm(samples[voiced[0]:voiced[-1]].tobytes(), 8000)  # speech edge to edge


def run(endpointer: Endpointer, audio: Pcm, chunk_ms: int = 20):
    size = 2 * audio.rate * chunk_ms // 1000
    marks, speech = [], b""
    for i in range(0, len(audio.data), size):
        step = endpointer.feed(audio.data[i:i + size])
        speech += step.speech
        if step.started:
            marks.append(("start", step.at_s))
        if step.ended:
            marks.append(("end", step.at_s, step.reason))
    return marks, speech


def test_one_utterance_starts_at_speech_and_ends_after_the_silence(speech: Pcm):
    audio = Pcm.silence(1.0, 8000) + speech + Pcm.silence(1.5, 8000)
    marks, captured = run(Endpointer(8000), audio)
    assert [m[0] for m in marks] == ["start", "end"]
    assert 1.0 < marks[0][1] < 1.5                       # onset needs 180 ms of voice
    speech_end = 1.0 + speech.duration_s
    assert speech_end + 0.45 <= marks[1][1] <= speech_end + 0.7 and marks[1][2] == "silence"
    # the utterance carries the speech from before the onset (pre-roll) to the end
    assert len(captured) / 2 / 8000 >= speech.duration_s


def test_chunk_size_does_not_change_the_cut(speech: Pcm):
    audio = Pcm.silence(0.5, 8000) + speech + Pcm.silence(1.0, 8000)
    assert run(Endpointer(8000), audio, 20)[0] == run(Endpointer(8000), audio, 60)[0]


def test_silence_and_a_short_click_start_nothing():
    click = Pcm.from_array(np.concatenate([np.zeros(8000), np.random.default_rng(1).normal(0, 0.3, 400),
                                           np.zeros(8000)]), 8000)
    assert run(Endpointer(8000), click)[0] == []
    assert run(Endpointer(16000), Pcm.silence(3.0, 16000))[0] == []


def test_configured_silence_and_maximum_length(speech: Pcm):
    audio = Pcm.silence(0.5, 8000) + speech + Pcm.silence(1.5, 8000)
    marks, _ = run(Endpointer(8000, EndpointSettings(silence_ms=1000)), audio)
    assert marks[1][1] >= 0.5 + speech.duration_s + 0.95
    marks, _ = run(Endpointer(8000, EndpointSettings(max_utterance_s=1.0)), audio)
    assert marks[1][2] == "max_length" and marks[1][1] - marks[0][1] <= 1.0


def test_two_utterances_with_a_pause_between(speech: Pcm):
    audio = Pcm.silence(0.5, 8000) + speech + Pcm.silence(1.0, 8000) + speech + Pcm.silence(1.0, 8000)
    marks, _ = run(Endpointer(8000), audio)
    assert [m[0] for m in marks] == ["start", "end", "start", "end"]
