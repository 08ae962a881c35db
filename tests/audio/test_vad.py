import numpy as np
import pytest

from adapter.audio.pcm import Pcm
from adapter.audio.resample import resample
from adapter.audio.vad import VoiceActivity


def loud_span(pcm: Pcm, threshold: int = 300) -> tuple[float, float]:
    """Where the audible part of a clean recording starts and ends, in seconds."""
    loud = np.flatnonzero(np.abs(pcm.samples().astype(int)) > threshold)
    return loud[0] / pcm.rate, (loud[-1] + 1) / pcm.rate


def noise(seconds: float, rate: int, dbfs: float, seed: int = 7) -> Pcm:
    rng = np.random.default_rng(seed)
    return Pcm.from_array(rng.normal(0, 10 ** (dbfs / 20), round(seconds * rate)), rate)


@pytest.fixture(scope="module")
def padded(speech):
    """One second of silence, the phrase, one and a half seconds of silence (22.05 kHz)."""
    return Pcm.silence(1.0, speech.rate) + speech + Pcm.silence(1.5, speech.rate)


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000])
def test_the_phrase_is_one_segment_where_the_words_are(padded, rate):
    audio = resample(padded, rate)
    start, end = loud_span(padded)
    [(seg_start, seg_end)] = VoiceActivity(rate).speech_segments(audio)
    assert seg_start == pytest.approx(start, abs=0.1)
    assert seg_end == pytest.approx(end, abs=0.15)


@pytest.mark.parametrize("frame_ms", [10, 20, 30])
def test_one_flag_per_whole_frame(padded, frame_ms):
    audio = resample(padded, 16000)
    flags = VoiceActivity(16000, frame_ms=frame_ms).speech_flags(audio)
    assert len(flags) == audio.frames // (16 * frame_ms)
    start, end = loud_span(padded)
    middle = int((start + end) / 2 * 1000 / frame_ms)
    assert not any(flags[: int(0.9 * 1000 / frame_ms)])  # the leading silence
    assert sum(flags[middle - 5: middle + 5]) >= 8


@pytest.mark.parametrize("rate", [8000, 16000])
def test_digital_silence_has_no_speech(rate):
    vad = VoiceActivity(rate)
    silence = Pcm.silence(3.0, rate)
    assert vad.speech_segments(silence) == []
    assert vad.trim_silence(silence) == Pcm(b"", rate)


@pytest.mark.parametrize("rate", [8000, 16000, 44100])
@pytest.mark.parametrize("dbfs", [-55, -45])
def test_low_white_noise_has_no_speech(rate, dbfs):
    vad = VoiceActivity(rate)
    hiss = noise(3.0, rate, dbfs)
    assert vad.speech_segments(hiss) == []
    assert vad.trim_silence(hiss).frames == 0


def test_speech_over_low_noise_is_found(padded):
    audio = resample(padded, 8000)
    noisy = Pcm.from_array(audio.samples() + noise(audio.duration_s, 8000, -45).samples(), 8000)
    [(seg_start, seg_end)] = VoiceActivity(8000).speech_segments(noisy)
    start, end = loud_span(padded)
    assert seg_start == pytest.approx(start, abs=0.15) and seg_end == pytest.approx(end, abs=0.2)


def test_trim_keeps_the_words_and_drops_the_silence(padded):
    audio = resample(padded, 16000)
    trimmed = VoiceActivity(16000).trim_silence(audio, pad_ms=200)
    start, end = loud_span(padded)
    assert trimmed.duration_s == pytest.approx(end - start + 0.4, abs=0.2)
    assert trimmed.duration_s < audio.duration_s - 1.5
    energy = lambda p: float(np.sum(p.samples().astype(float) ** 2))  # noqa: E731
    assert energy(trimmed) > 0.999 * energy(audio)  # every word is still there


def test_trim_with_no_padding_is_shorter(padded):
    vad = VoiceActivity(16000)
    audio = resample(padded, 16000)
    assert vad.trim_silence(audio, pad_ms=0).duration_s < vad.trim_silence(audio).duration_s - 0.35


def test_a_long_pause_splits_segments_unless_the_hangover_bridges_it(speech):
    rate = speech.rate
    two = Pcm.silence(0.5, rate) + speech + Pcm.silence(1.0, rate) + speech + Pcm.silence(0.5, rate)
    vad = VoiceActivity(rate)
    assert len(vad.speech_segments(two)) == 2
    assert len(vad.speech_segments(two, hangover_ms=2000)) == 1


def test_feeding_a_stream_in_odd_chunks_gives_the_same_flags(padded):
    audio = resample(padded, 16000)
    expected = VoiceActivity(16000).speech_flags(audio)
    live, flags = VoiceActivity(16000), []
    for i in range(0, len(audio.data), 1234):
        flags += live.feed(audio.data[i:i + 1234])
    assert flags == expected


def test_feeding_at_a_rate_webrtcvad_lacks_resamples_on_the_fly(padded):
    audio = resample(padded, 44100)
    expected = VoiceActivity(44100).speech_flags(audio)
    live, flags = VoiceActivity(44100), []
    for i in range(0, len(audio.data), 1764):  # 20 ms chunks
        flags += live.feed(audio.data[i:i + 1764])
    assert abs(len(flags) - len(expected)) <= 2
    agree = sum(a == b for a, b in zip(flags, expected, strict=False))
    assert agree >= 0.95 * min(len(flags), len(expected))


@pytest.mark.parametrize("rate", [16000, 22050, 44100])
def test_is_speech_on_single_frames(padded, rate):
    audio = resample(padded, rate)
    vad = VoiceActivity(rate, frame_ms=30)
    start, end = loud_span(padded)
    # a fresh live detector may take its first frames for speech: skip them
    frames = [audio.data[i:i + vad.frame_bytes]
              for i in range(0, len(audio.data) - vad.frame_bytes + 1, vad.frame_bytes)]
    flags = [vad.is_speech(f) for f in frames]
    middle = int((start + end) / 2 / 0.03)
    assert sum(flags[middle - 3: middle + 3]) >= 5
    assert not any(flags[5: int(0.9 / 0.03)])


def test_is_speech_wants_exactly_one_frame():
    vad = VoiceActivity(8000, frame_ms=20)
    assert vad.frame_bytes == 320
    with pytest.raises(ValueError, match="a 20 ms frame at 8000 Hz is 320 bytes, got 318"):
        vad.is_speech(bytes(318))


@pytest.mark.parametrize("kwargs, message", [
    ({"frame_ms": 25}, "webrtcvad frames are 10, 20 or 30 ms, not 25"),
    ({"aggressiveness": 4}, "aggressiveness is 0..3, not 4"),
])
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VoiceActivity(16000, **kwargs)


def test_audio_at_another_rate_is_refused():
    with pytest.raises(ValueError, match="this detector is for 16000 Hz audio, got 8000 Hz"):
        VoiceActivity(16000).speech_flags(Pcm.silence(1, 8000))
