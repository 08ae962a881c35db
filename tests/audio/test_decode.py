import audioop
import subprocess

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapter.audio import ffmpeg, wav
from adapter.audio.decode import MEDIA_TYPES, decode_audio, parse_content_type
from adapter.audio.errors import (
    AudioError,
    AudioTooLarge,
    AudioTooLong,
    MalformedAudio,
    UnsupportedAudio,
)
from adapter.audio.limits import AudioLimits
from adapter.audio.pcm import Pcm
from adapter.audio.wav import Encoding, wav_bytes

TONE = Pcm.from_array(0.4 * np.sin(2 * np.pi * 440 * np.arange(800) / 8000), 8000)  # 0.1 s


def raises(error_type, data, content_type=None, limits=AudioLimits()) -> str:
    """The reason of the exact error type decode_audio raises; it must be one line."""
    with pytest.raises(error_type) as e:
        decode_audio(data, content_type, limits)
    assert type(e.value) is error_type
    assert "\n" not in str(e.value) and len(str(e.value)) < 200
    return str(e.value)


def test_parse_content_type_lowers_the_type_and_keys():
    assert parse_content_type(' Audio/L16 ; Rate="16000";channels=2') == (
        "audio/l16", {"rate": "16000", "channels": "2"})
    assert parse_content_type("audio/wav") == ("audio/wav", {})


def test_parse_content_type_strips_only_http_whitespace():
    assert parse_content_type("audio/L16;\trate= 16000 ") == ("audio/l16", {"rate": "16000"})
    assert parse_content_type("audio/L16;rate=\u300016000") == ("audio/l16", {"rate": "\u300016000"})


@settings(deadline=None)
@given(st.text(max_size=80))
def test_parse_content_type_takes_any_text(value):
    media, params = parse_content_type(value)
    assert media == media.lower() and ";" not in media
    assert all(k == k.lower() and ";" not in k + v for k, v in params.items())


NUMBERISH = st.from_regex(r"[0-9_+\s\u00a0０-９٠-٩]{1,7}", fullmatch=True)  # what int() would take
PARAMETERS = st.lists(st.tuples(st.sampled_from(["rate", "channels", "Rate", " codecs", "q"]),
                                st.one_of(st.text(max_size=12), st.integers(-10, 10**6).map(str), NUMBERISH)),
                      max_size=3)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["audio/L16", "audio/slin", "audio/basic", "audio/PCMA", "audio/wav", "text/plain"]),
       PARAMETERS, st.binary(min_size=1, max_size=64))
def test_any_content_type_parameters_give_audio_or_an_audio_error(media, params, data):
    content_type = media + "".join(f";{k}={v}" for k, v in params)
    try:
        pcm = decode_audio(data, content_type, AudioLimits(max_seconds=5))
    except AudioError as e:
        assert "\n" not in str(e)
    else:
        rate = parse_content_type(content_type)[1].get("rate")
        assert rate is None or (rate.isascii() and rate.isdigit() and int(rate) == pcm.rate)
        assert 1000 <= pcm.rate <= 192_000


@pytest.mark.parametrize("content_type", [
    "audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave", "AUDIO/WAV; codec=1",
    None, "application/octet-stream",
])
def test_wav(content_type):
    assert decode_audio(wav_bytes(TONE), content_type) == TONE


ULAW = audioop.lin2ulaw(TONE.data, 2)
ALAW = audioop.lin2alaw(TONE.data, 2)
AS_ULAW = Pcm(audioop.ulaw2lin(ULAW, 2), 8000)
AS_ALAW = Pcm(audioop.alaw2lin(ALAW, 2), 8000)
BIG_ENDIAN = TONE.samples().astype(">i2").tobytes()


@pytest.mark.parametrize("content_type, data, expected", [
    ("audio/basic", ULAW, AS_ULAW),
    ("audio/PCMU", ULAW, AS_ULAW),
    ("audio/x-mulaw;rate=8000", ULAW, AS_ULAW),
    ("audio/mulaw", ULAW, AS_ULAW),
    ("audio/ulaw", ULAW, AS_ULAW),
    ("audio/x-mulaw;rate=16000", ULAW, Pcm(AS_ULAW.data, 16000)),
    ("audio/PCMA", ALAW, AS_ALAW),
    ("audio/x-alaw", ALAW, AS_ALAW),
    ("audio/alaw;rate=8000", ALAW, AS_ALAW),
    ("audio/L16;rate=8000", BIG_ENDIAN, TONE),
    ("audio/l16; rate=16000", BIG_ENDIAN, Pcm(TONE.data, 16000)),
    ("audio/slin;rate=8000", TONE.data, TONE),
    ("audio/x-slin;rate=8000", TONE.data, TONE),
    ("audio/x-raw;rate=8000;channels=1", TONE.data, TONE),
])
def test_headerless_types(content_type, data, expected):
    assert decode_audio(data, content_type) == expected


def test_l16_channels_are_averaged():
    stereo = np.array([[100, 300], [-5, -7], [32767, 32767]], dtype=">i2").tobytes()
    pcm = decode_audio(stereo, "audio/L16;rate=16000;channels=2")
    assert (pcm.samples().tolist(), pcm.rate) == ([200, -6, 32767], 16000)


def test_mulaw_stereo_is_averaged():
    codes = bytes([0xFF, 0x80, 0x00, 0x00])  # (0, 32124), (-32124, -32124)
    assert decode_audio(codes, "audio/PCMU;channels=2").samples().tolist() == [16062, -32124]


# (file name, ffmpeg options, content types, rate ffmpeg keeps)
CONTAINERS = {
    "mp3": ("speech.mp3", (), ("audio/mpeg", "audio/mp3"), 22050),
    "mp3 without ID3": ("bare.mp3", ("-id3v2_version", "0", "-write_xing", "0"), ("audio/mpeg",), 22050),
    "ogg vorbis": ("speech.ogg", ("-c:a", "libvorbis"), ("audio/ogg", "application/ogg"), 22050),
    "ogg opus": ("speech.opus", ("-c:a", "libopus"), ("audio/ogg; codecs=opus", "audio/opus"), 48000),
    "flac": ("speech.flac", (), ("audio/flac", "audio/x-flac"), 22050),
    "flac 24-bit stereo": ("s24.flac", ("-af", "pan=stereo|c0=c0|c1=c0", "-sample_fmt", "s32",
                                        "-bits_per_raw_sample", "24"), ("audio/flac",), 22050),
    "webm opus": ("speech.webm", ("-c:a", "libopus"), ("audio/webm", "audio/webm;codecs=opus"), 48000),
}


@pytest.mark.parametrize("case", CONTAINERS, ids=str)
def test_containers_decode_through_ffmpeg(case, ffmpeg_file, speech):
    name, options, content_types, rate = CONTAINERS[case]
    data = ffmpeg_file(name, *options)
    for content_type in (*content_types, None, "application/octet-stream"):
        pcm = decode_audio(data, content_type)
        assert pcm.rate == rate
        # an MP3 without a Xing header keeps the encoder delay and padding: up to ~0.1 s
        assert pcm.duration_s == pytest.approx(speech.duration_s, abs=0.1)
        # it is the speech, not noise or silence: loudness close to the original's
        level = np.sqrt(np.mean(pcm.samples().astype(float) ** 2))
        original = np.sqrt(np.mean(speech.samples().astype(float) ** 2))
        assert level == pytest.approx(original, rel=0.15)


@pytest.mark.parametrize("name, options", [
    ("speech.flac", ()),
    ("s24.flac", ("-af", "pan=stereo|c0=c0|c1=c0", "-sample_fmt", "s32", "-bits_per_raw_sample", "24")),
])
def test_flac_is_lossless(ffmpeg_file, speech, name, options):
    assert decode_audio(ffmpeg_file(name, *options), "audio/flac") == speech


def test_every_media_type_is_tested():
    tested = {parse_content_type(ct)[0] for ct in (
        "audio/wav audio/x-wav audio/wave audio/vnd.wave audio/basic audio/pcmu audio/x-mulaw "
        "audio/mulaw audio/ulaw audio/pcma audio/x-alaw audio/alaw audio/l16 audio/slin "
        "audio/x-slin audio/x-raw audio/mpeg audio/mp3 audio/ogg application/ogg audio/opus "
        "audio/flac audio/x-flac audio/webm").split()}
    # two MP3 aliases are only table entries
    assert set(MEDIA_TYPES) - tested == {"audio/mpeg3", "audio/x-mp3"}


def test_silence_is_valid_audio():
    silence = Pcm.silence(1.0, 16000)
    assert decode_audio(wav_bytes(silence)) == silence
    assert decode_audio(b"\xff" * 800, "audio/basic") == Pcm.silence(0.1, 8000)


def test_too_many_bytes_are_refused_before_anything_else():
    reason = raises(AudioTooLarge, b"x" * 101, "text/plain", AudioLimits(max_bytes=100))
    assert reason == "audio is 101 bytes, over the 100-byte limit"


def test_empty_body_is_malformed():
    assert raises(MalformedAudio, b"", "audio/wav") == "the audio is empty (0 bytes)"
    assert raises(MalformedAudio, b"") == "the audio is empty (0 bytes)"


def test_unrecognised_bytes_without_a_type_ask_for_one():
    expected = "cannot tell the audio format; send a Content-Type such as audio/wav"
    assert raises(UnsupportedAudio, b"hello, world") == expected
    assert raises(UnsupportedAudio, b"hello, world", "application/octet-stream") == expected


def test_unknown_content_type_is_named():
    reason = raises(UnsupportedAudio, b"hello", "text/plain; charset=utf-8")
    assert reason.startswith("Content-Type 'text/plain' is not audio we decode")


def test_content_type_with_a_newline_still_gives_one_line():
    raises(UnsupportedAudio, b"hello", "audio/x\nevil")


@pytest.mark.parametrize("content_type, data, reason", [
    ("audio/wav", b"OggS" + bytes(40), "Content-Type says audio/wav but the data is Ogg"),
    ("audio/wav", b"not a wav at all", "Content-Type says audio/wav but the data is not WAV"),
    ("audio/ogg", wav_bytes(TONE), "Content-Type says audio/ogg but the data is WAV"),
    ("audio/flac", b"ID3\x04" + bytes(40), "Content-Type says audio/flac but the data is MP3"),
    ("audio/webm", b"fLaC" + bytes(40), "Content-Type says audio/webm but the data is FLAC"),
    ("audio/mpeg", b"\x1a\x45\xdf\xa3" + bytes(40), "Content-Type says audio/mpeg but the data is WebM"),
    ("audio/basic", wav_bytes(TONE), "Content-Type says audio/basic but the data is WAV"),
    ("audio/l16;rate=8000", b"OggS" + bytes(40), "Content-Type says audio/l16 but the data is Ogg"),
])
def test_declared_type_contradicting_the_bytes_is_malformed(content_type, data, reason):
    assert raises(MalformedAudio, data, content_type) == reason


def test_mulaw_that_looks_like_an_mpeg_frame_is_still_mulaw():
    codes = bytes([0xFF, 0xFB, 0x90, 0x64]) * 10
    assert decode_audio(codes, "audio/basic").frames == 40


@pytest.mark.parametrize("content_type, data, error, reason", [
    ("audio/L16", bytes(4), UnsupportedAudio, "audio/l16 needs a rate parameter, e.g. audio/l16;rate=16000"),
    ("audio/slin", bytes(4), UnsupportedAudio, "audio/slin needs a rate parameter, e.g. audio/slin;rate=16000"),
    ("audio/L16;rate=abc", bytes(4), MalformedAudio, "audio/l16 parameter rate='abc' is not a whole number"),
    # ASCII digits only: int() alone would read every one of these as a number
    ("audio/L16;rate=1_6000", bytes(4), MalformedAudio, "audio/l16 parameter rate='1_6000' is not a whole number"),
    ("audio/L16;rate=１６０００", bytes(4), MalformedAudio,
     "audio/l16 parameter rate='１６０００' is not a whole number"),
    ("audio/L16;rate=+16000", bytes(4), MalformedAudio, "audio/l16 parameter rate='+16000' is not a whole number"),
    ("audio/L16;rate=\u00a016000", bytes(4), MalformedAudio,
     "audio/l16 parameter rate='\\xa016000' is not a whole number"),
    ("audio/L16;rate=16000\x0c", bytes(4), MalformedAudio,
     "audio/l16 parameter rate='16000\\x0c' is not a whole number"),
    ("audio/basic;channels=٢", bytes(4), MalformedAudio, "audio/basic parameter channels='٢' is not a whole number"),
    ("audio/L16;rate=8000;channels=1__0", bytes(4), MalformedAudio,
     "audio/l16 parameter channels='1__0' is not a whole number"),
    ("audio/L16;rate=0", bytes(4), MalformedAudio,
     "audio/l16 declares a sample rate of 0 Hz (expected 1000 or more)"),
    ("audio/L16;rate=384000", bytes(4), UnsupportedAudio,
     "audio/l16 is sampled at 384000 Hz; at most 192000 Hz is decoded"),
    ("audio/L16;rate=8000;channels=9", bytes(36), UnsupportedAudio, "audio/l16 has 9 channels; at most 8 are decoded"),
    ("audio/basic;channels=0", bytes(4), MalformedAudio, "audio/basic declares 0 channels"),
    ("audio/L16;rate=8000", bytes(5), MalformedAudio,
     "audio/l16 data is 5 bytes, not a whole number of 2-byte frames"),
    ("audio/slin;rate=8000;channels=2", bytes(6), MalformedAudio,
     "audio/slin data is 6 bytes, not a whole number of 4-byte frames"),
])
def test_bad_headerless_parameters(content_type, data, error, reason):
    assert raises(error, data, content_type) == reason


def test_headerless_duration_is_checked_from_the_byte_count_before_decoding(monkeypatch):
    def must_not_decode(raw):
        raise AssertionError("decoded despite the limit")
    monkeypatch.setitem(wav.ENCODINGS, "ulaw", Encoding("ulaw", 1, must_not_decode))
    reason = raises(AudioTooLong, b"\xff" * 8000 * 3, "audio/basic", AudioLimits(max_seconds=2))
    assert reason == "audio/basic lasts 3.0 s, over the 2 s limit"


def test_wav_header_that_lies_about_its_size_is_malformed():
    data = wav_bytes(TONE)
    lying = data[:40] + (320000).to_bytes(4, "little") + data[44:]
    assert raises(MalformedAudio, lying, "audio/wav") == (
        f"WAV data chunk claims 320000 bytes but the file holds {len(TONE.data)}")


def test_long_container_audio_is_refused_from_its_header_before_decoding(ffmpeg_file, monkeypatch):
    def must_not_decode(*args):
        raise AssertionError("decoded despite the header")
    monkeypatch.setattr(ffmpeg, "decode_mono16", must_not_decode)
    reason = raises(AudioTooLong, ffmpeg_file("speech.ogg", "-c:a", "libvorbis"), "audio/ogg",
                    AudioLimits(max_seconds=1))
    assert reason == "Ogg audio lasts 1.5 s, over the 1 s limit"


def test_a_stream_that_does_not_say_its_length_is_cut_at_the_limit_while_decoding(media_dir):
    # FLAC written to a pipe has no sample count in its header: only decoding tells its length
    data = subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono",
                           "-t", "120", "-c:a", "flac", "-f", "flac", "-"], check=True, capture_output=True).stdout
    assert len(data) < 100_000 and ffmpeg.probe(data, "flac", "FLAC").duration_s is None
    assert raises(AudioTooLong, data, "audio/flac", AudioLimits(max_seconds=5)) == (
        "FLAC audio runs past the 5 s limit")
    assert decode_audio(data, "audio/flac", AudioLimits(max_seconds=120)) == Pcm.silence(120, 8000)


@pytest.mark.parametrize("content_type, data", [
    ("audio/mpeg", b"\xff\xfb\x90\x64" + b"garbage!" * 50),
    ("audio/ogg", b"OggS" + b"\x00" * 200),
    ("audio/flac", b"fLaC" + b"\x07" * 200),
    ("audio/webm", b"\x1a\x45\xdf\xa3" + b"\x00" * 200),
])
def test_corrupt_containers_are_malformed_with_a_short_reason(content_type, data):
    reason = raises(MalformedAudio, data, content_type)
    assert reason.startswith("cannot decode the ")
    assert "ffmpeg version" not in reason and "libav" not in reason


def test_truncated_mp3_decodes_what_is_there(ffmpeg_file, speech):
    data = ffmpeg_file("speech.mp3")
    pcm = decode_audio(data[: len(data) // 2], "audio/mpeg")
    assert 0.3 * speech.duration_s < pcm.duration_s < 0.7 * speech.duration_s


MAGICS = [b"", b"RIFF\x10\x00\x00\x00WAVE", b"RIFF\xff\xff\xff\x7fWAVEfmt ", b"OggS", b"fLaC",
          b"ID3", b"\x1a\x45\xdf\xa3", b"\xff\xfb\x90", b"RF64"]
FAST_TYPES = [None, "audio/wav", "audio/basic", "audio/PCMA;rate=16000", "audio/L16;rate=8000",
              "audio/slin;rate=22050;channels=3", "audio/L16;rate=99", "text/plain"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(MAGICS[:3]), st.binary(max_size=600), st.sampled_from(FAST_TYPES))
def test_garbage_only_ever_raises_audio_errors(magic, garbage, content_type):
    decodes_or_explains(magic + garbage, content_type)


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(MAGICS), st.binary(max_size=400),
       st.sampled_from([None, "audio/mpeg", "audio/ogg", "audio/flac", "audio/webm"]))
def test_garbage_through_ffmpeg_only_ever_raises_audio_errors(magic, garbage, content_type):
    decodes_or_explains(magic + garbage, content_type)


def decodes_or_explains(data: bytes, content_type: str | None) -> None:
    """Any bytes either decode to PCM or raise an AudioError with a one-line reason, nothing else."""
    try:
        pcm = decode_audio(data, content_type, AudioLimits(max_seconds=5))
    except AudioError as e:
        assert "\n" not in str(e)
    else:
        assert isinstance(pcm, Pcm)
