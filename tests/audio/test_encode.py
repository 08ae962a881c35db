import audioop
import subprocess

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapter.audio.decode import decode_audio
from adapter.audio.encode import FORMATS, L16_RATES, OutputFormat, encode_audio, format_for_content_type
from adapter.audio.errors import UnsupportedAudio
from adapter.audio.pcm import Pcm
from adapter.audio.resample import resample

# name: (rate for 22.05 kHz input, content type, extension, lossless after resampling)
EXPECTED = {
    "wav16k": (16000, "audio/wav", "wav", True),
    "wav8k": (8000, "audio/wav", "wav", True),
    "ulaw8k": (8000, "audio/basic", "ulaw", False),
    "alaw8k": (8000, "audio/PCMA", "alaw", False),
    "wav-ulaw8k": (8000, "audio/wav", "wav", False),
    "wav-alaw8k": (8000, "audio/wav", "wav", False),
    "l16": (22050, "audio/L16;rate=22050", "l16", True),
    "mp3": (22050, "audio/mpeg", "mp3", False),
    "slin16k": (16000, "audio/slin;rate=16000", "raw", True),
    "slin8k": (8000, "audio/slin;rate=8000", "raw", True),
}


def test_the_registry_holds_exactly_these_formats():
    assert list(FORMATS) == list(EXPECTED)


@pytest.mark.parametrize("name", EXPECTED)
def test_round_trip_through_decode(name, speech):
    rate, content_type, extension, lossless = EXPECTED[name]
    fmt = FORMATS[name]
    assert (fmt.output_rate(speech.rate), fmt.content_type_for(speech.rate), fmt.extension) == (
        rate, content_type, extension)
    back = decode_audio(encode_audio(speech, name), content_type)
    assert back.rate == rate
    assert back.duration_s == pytest.approx(speech.duration_s, abs=0.03 if name == "mp3" else 1e-3)
    resampled = resample(speech, rate)
    if lossless:
        assert back == resampled
    elif name.endswith(("ulaw8k", "alaw8k")):
        law = "ulaw" if "ulaw" in name else "alaw"
        coded = getattr(audioop, f"lin2{law}")(resampled.data, 2)
        assert back.data == getattr(audioop, f"{law}2lin")(coded, 2)
    else:  # MP3: the same speech, give or take the codec
        a, b = back.samples().astype(float), resampled.samples().astype(float)
        n = min(len(a), len(b))
        assert np.corrcoef(a[:n], b[:n])[0, 1] > 0.9


def test_l16_is_big_endian_at_the_pcm_rate():
    pcm = Pcm.from_array(np.array([1, -2, 0x1234]), 8000)
    assert encode_audio(pcm, "l16") == b"\x00\x01\xff\xfe\x12\x34"


def test_slin16k_is_little_endian_at_16k():
    pcm = Pcm.from_array(np.array([1, -2, 0x1234]), 16000)
    assert encode_audio(pcm, "slin16k") == b"\x01\x00\xfe\xff\x34\x12"
    assert len(encode_audio(Pcm.silence(1.0, 8000), "slin16k")) == 32000


def test_raw_g711_is_one_byte_per_sample_at_8k():
    silence = Pcm.silence(1.0, 8000)
    assert encode_audio(silence, "ulaw8k") == b"\xff" * 8000
    assert encode_audio(silence, "alaw8k") == b"\xd5" * 8000
    assert len(encode_audio(Pcm.silence(1.0, 16000), "ulaw8k")) == 8000


def test_wav_mulaw_for_twilio_is_what_sox_calls_mulaw(tmp_path, speech):
    path = tmp_path / "play.wav"
    path.write_bytes(encode_audio(speech, "wav-ulaw8k"))
    info = subprocess.run(["sox", "--i", str(path)], check=True, capture_output=True, text=True).stdout
    assert "8-bit u-law" in info and "Sample Rate    : 8000" in info and "Channels       : 1" in info


def test_mp3_is_an_mpeg_stream_ffprobe_recognises(tmp_path, speech):
    path = tmp_path / "reply.mp3"
    path.write_bytes(encode_audio(speech, "mp3"))
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,sample_rate,channels",
         "-of", "csv=p=0", str(path)], check=True, capture_output=True, text=True).stdout
    assert probe.strip() == "mp3,22050,1"


@pytest.mark.parametrize("rate, mp3_rate", [(8000, 8000), (44100, 44100), (20000, 22050), (96000, 48000)])
def test_mp3_takes_the_nearest_rate_it_can_carry(rate, mp3_rate):
    tone = Pcm.from_array(0.3 * np.sin(2 * np.pi * 440 * np.arange(rate // 2) / rate), rate)
    assert FORMATS["mp3"].output_rate(rate) == mp3_rate
    assert decode_audio(encode_audio(tone, "mp3"), "audio/mpeg").rate == mp3_rate


def test_already_at_rate_is_not_resampled():
    pcm = Pcm.from_array(np.array([1, 2, 3, 4]), 16000)
    assert decode_audio(encode_audio(pcm, "wav16k")) == pcm


def test_empty_pcm_encodes_to_empty_audio():
    empty = Pcm(b"", 16000)
    assert encode_audio(empty, "ulaw8k") == b""
    assert decode_audio(encode_audio(empty, "wav8k")) == Pcm(b"", 8000)


def test_unknown_format_name_is_unsupported():
    with pytest.raises(UnsupportedAudio) as e:
        encode_audio(Pcm.silence(0.1, 8000), "ogg")
    assert str(e.value) == (
        "unknown output format 'ogg'; choose one of wav16k, wav8k, ulaw8k, alaw8k, "
        "wav-ulaw8k, wav-alaw8k, l16, mp3, slin16k, slin8k")


@pytest.mark.parametrize("content_type, name, rate", [
    ("audio/basic", "ulaw8k", 8000),
    ("audio/PCMU", "ulaw8k", 8000),
    ("audio/x-mulaw;rate=8000", "ulaw8k", 8000),
    ("audio/PCMA", "alaw8k", 8000),
    ("audio/wav", "wav16k", 16000),
    ("audio/x-wav; rate=8000", "wav8k", 8000),
    ("audio/wav;rate=16000", "wav16k", 16000),
    ("audio/mpeg", "mp3", None),
    ("audio/L16", "l16", None),
    ("audio/L16;rate=8000", "l16", 8000),
    ("audio/l16;rate=24000", "l16", 24000),
])
def test_format_for_content_type(content_type, name, rate):
    fmt = format_for_content_type(content_type)
    assert fmt is not None and (fmt.name, fmt.rate) == (name, rate)


@pytest.mark.parametrize("content_type", [
    "audio/x-mulaw;rate=16000", "audio/wav;rate=44100", "audio/L16;rate=abc", "audio/L16;rate=0",
    "audio/ogg", "audio/x-raw;rate=8000", "text/html", "*/*",
    # only the fixed L16 rates: a client inventing rates must not make us build a format per rate
    "audio/L16;rate=12345", "audio/L16;rate=16001", "audio/L16;rate=11025", "audio/L16;rate=96000",
    # ASCII digits only: int() alone takes all of these for 16000
    "audio/L16;rate=1_6000", "audio/L16;rate=１６０００", "audio/L16;rate=+16000", "audio/L16;rate=16000.0",
    "audio/L16;rate=\u00a016000", "audio/L16;rate=16000\x0b", "audio/L16;rate=٨٠٠٠", "audio/L16;rate=",
])
def test_no_format_for_content_types_we_cannot_answer(content_type):
    assert format_for_content_type(content_type) is None


def test_l16_answers_exactly_the_fixed_rates():
    answered = {r for r in range(1000, 200_001) if format_for_content_type(f"audio/L16;rate={r}")}
    assert answered == set(L16_RATES) == {8000, 16000, 22050, 24000, 32000, 44100, 48000}


def test_l16_from_a_rate_outside_the_set_is_sent_at_the_next_one_up():
    assert (FORMATS["l16"].output_rate(11025), FORMATS["l16"].content_type_for(11025)) == (
        16000, "audio/L16;rate=16000")
    assert decode_audio(encode_audio(Pcm.silence(1.0, 11025), "l16"), "audio/L16;rate=16000").frames == 16000


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=60), st.integers(0, 999_999).map(str)),
       st.sampled_from(["audio/L16;rate=", "audio/wav;rate=", "audio/mpeg; rate=", ""]))
def test_any_accept_value_gives_a_known_format_or_none(text, prefix):
    fmt = format_for_content_type(prefix + text)
    assert fmt is None or (fmt.name in FORMATS and (fmt.rate is None or fmt.output_rate(fmt.rate) == fmt.rate))
    if fmt is not None and fmt.name == "l16" and fmt.rate is not None:
        assert fmt.rate in L16_RATES


def test_a_format_from_a_content_type_encodes_at_its_rate(speech):
    fmt = format_for_content_type("audio/L16;rate=8000")
    assert isinstance(fmt, OutputFormat)
    data = encode_audio(speech, fmt)
    assert fmt.content_type_for(speech.rate) == "audio/L16;rate=8000"
    assert decode_audio(data, "audio/L16;rate=8000") == resample(speech, 8000)
