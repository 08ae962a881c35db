"""Resampling keeps the signal, its length and digital silence."""

import numpy as np
import pytest

from adapter.audio.pcm import Pcm
from adapter.audio.resample import StreamResampler, resample


def tone(freq: float, rate: int, seconds: float = 1.0) -> Pcm:
    t = np.arange(int(rate * seconds)) / rate
    return Pcm.from_array(0.5 * np.sin(2 * np.pi * freq * t), rate)


def dominant_hz(pcm: Pcm) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.samples()))
    return float(np.argmax(spectrum) * pcm.rate / pcm.frames)


@pytest.mark.parametrize(("src", "dst"), [(8000, 16000), (16000, 8000), (22050, 16000), (48000, 8000)])
def test_length_and_frequency_are_kept(src, dst):
    out = resample(tone(440, src), dst)
    assert out.rate == dst and abs(out.frames - dst) <= 1
    assert abs(dominant_hz(out) - 440) < 2


def test_silence_stays_digital_silence():
    assert not resample(Pcm.silence(1.0, 16000), 8000).samples().any()
    stream = StreamResampler(8000, 16000)
    assert not np.frombuffer(stream.process(bytes(3200)), "<i2").any()


def test_content_above_the_new_nyquist_is_removed():
    out = resample(tone(6000, 16000), 8000)      # 6 kHz cannot exist at 8 kHz: filtered, not aliased
    assert np.abs(out.samples()[400:-400]).max() < 200  # edges hold only the filter's start-up


def test_streamed_chunks_match_one_call():
    pcm = tone(300, 8000)
    stream = StreamResampler(8000, 16000)
    chunks = [stream.process(pcm.data[i:i + 320]) for i in range(0, len(pcm.data), 320)]
    streamed = np.frombuffer(b"".join(chunks) + stream.process(b"", last=True), "<i2")
    whole = resample(pcm, 16000).samples()
    assert abs(len(streamed) - len(whole)) <= 2
    n = min(len(streamed), len(whole)) - 400
    assert np.abs(streamed[200:n].astype(int) - whole[200:n]).max() < 300


def test_same_rate_is_a_no_op():
    pcm = tone(440, 8000)
    assert resample(pcm, 8000) is pcm
    assert StreamResampler(8000, 8000).process(pcm.data) == pcm.data
