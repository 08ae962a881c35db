import audioop
import struct
import subprocess
import wave

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapter.audio import wav
from adapter.audio.decode import decode_audio
from adapter.audio.errors import AudioError, AudioTooLong, MalformedAudio, UnsupportedAudio
from adapter.audio.limits import AudioLimits
from adapter.audio.pcm import Pcm
from adapter.audio.wav import MIN_RATE, Encoding, g711_wav_bytes, read_wav, read_wav_header, wav_bytes

V = np.array([0, 1, -1, 1000, -1000, 12345, -23456, 32767, -32768], dtype=np.int64)
KS_TAIL = bytes.fromhex("000000001000800000aa00389b71")


def chunk(chunk_id: bytes, body: bytes) -> bytes:
    return chunk_id + struct.pack("<I", len(body)) + body + b"\0" * (len(body) % 2)


def fmt(tag: int, channels: int, rate: int, bits: int, sub: int | None = None) -> bytes:
    align = channels * ((bits + 7) // 8)
    body = struct.pack("<HHIIHH", tag, channels, rate, (rate * align) & 0xFFFFFFFF, align, bits)
    if sub is not None:  # WAVE_FORMAT_EXTENSIBLE
        body += struct.pack("<HHIH", 22, bits, 0, sub) + KS_TAIL
    return chunk(b"fmt ", body)


def riff(*chunks: bytes) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def make_wav(tag, channels, rate, bits, payload: bytes, sub=None) -> bytes:
    return riff(fmt(tag, channels, rate, bits, sub), chunk(b"data", payload))


def int24(values: np.ndarray) -> bytes:
    return b"".join(int(v).to_bytes(4, "little", signed=True)[:3] for v in values)


def sox_raw16(path) -> np.ndarray:
    """sox's own decoding of a file to 16-bit mono, without dither: the oracle."""
    out = subprocess.run(
        ["sox", path, "-t", "raw", "-e", "signed", "-b", "16", "-c", "1", "-D", "-"],
        check=True, capture_output=True,
    ).stdout
    return np.frombuffer(out, dtype="<i2").astype(int)


# (format tag, bits, sub-format, payload, expected 16-bit samples)
EXACT = {
    "pcm u8": (1, 8, None, ((V >> 8) + 128).astype(np.uint8).tobytes(), (V >> 8) << 8),
    "pcm s16": (1, 16, None, V.astype("<i2").tobytes(), V),
    "pcm s24": (1, 24, None, int24((V << 8) | 0x40), V),
    "pcm s32": (1, 32, None, ((V << 16) | 0x4000).astype("<i4").tobytes(), V),
    "pcm 12-bit in 16": (1, 12, None, (V & ~0xF).astype("<i2").tobytes(), V & ~0xF),
    "float32": (3, 32, None, (V / 32768).astype("<f4").tobytes(), V),
    "float64": (3, 64, None, (V / 32768).astype("<f8").tobytes(), V),
    "extensible s24": (0xFFFE, 24, 1, int24(V << 8), V),
    "extensible float32": (0xFFFE, 32, 3, (V / 32768).astype("<f4").tobytes(), V),
    "mu-law": (7, 8, None, bytes(range(256)),
               np.frombuffer(audioop.ulaw2lin(bytes(range(256)), 2), "<i2")),
    "a-law": (6, 8, None, bytes(range(256)),
              np.frombuffer(audioop.alaw2lin(bytes(range(256)), 2), "<i2")),
    "extensible mu-law": (0xFFFE, 8, 7, bytes(range(256)),
                          np.frombuffer(audioop.ulaw2lin(bytes(range(256)), 2), "<i2")),
}


@pytest.mark.parametrize("case", EXACT, ids=str)
def test_each_encoding_decodes_to_exact_16_bit_samples(case):
    tag, bits, sub, payload, expected = EXACT[case]
    pcm = read_wav(make_wav(tag, 1, 8000, bits, payload, sub))
    assert pcm.rate == 8000
    assert pcm.samples().tolist() == list(expected)


def test_wider_samples_are_rounded_and_clipped_to_16_bits():
    payload = int24(np.array([0x7FFFFF, 0x00017F, 0x000180, -0x800000]))
    assert read_wav(make_wav(1, 1, 8000, 24, payload)).samples().tolist() == [32767, 1, 2, -32768]


def test_float_out_of_range_and_nan_are_clipped_and_zeroed():
    payload = np.array([2.0, -7.5, np.nan, np.inf, -np.inf, 0.5], dtype="<f4").tobytes()
    pcm = read_wav(make_wav(3, 1, 8000, 32, payload))
    assert pcm.samples().tolist() == [32767, -32768, 0, 32767, -32768, 16384]


def test_stereo_is_averaged_to_mono():
    left, right = np.array([100, -200, 32767, 7]), np.array([300, 200, 32767, -8])
    payload = np.column_stack([left, right]).astype("<i2").tobytes()
    pcm = read_wav(make_wav(1, 2, 44100, 16, payload))
    assert pcm.samples().tolist() == [200, 0, 32767, 0]  # -0.5 rounds to even


def test_six_channels_are_averaged_to_mono():
    frames = np.array([[600, 0, 0, 0, 0, 0], [-60, -60, -60, -60, -60, -60]])
    pcm = read_wav(make_wav(1, 6, 48000, 16, frames.astype("<i2").tobytes()))
    assert pcm.samples().tolist() == [100, -60]


def test_unknown_chunks_and_odd_sizes_are_skipped():
    samples = np.array([5, -5, 7], dtype="<i2").tobytes()
    data = riff(
        chunk(b"JUNK", b"abc"),          # odd size: one pad byte follows
        fmt(1, 1, 16000, 16),
        chunk(b"LIST", b"INFOISFT\x05\x00\x00\x00sox!\x00"),
        chunk(b"fact", struct.pack("<I", 3)),
        chunk(b"data", samples),
        chunk(b"LIST", b"x"),            # after the data: never read
    )
    assert read_wav(data).samples().tolist() == [5, -5, 7]


def test_odd_sized_8_bit_data_chunk_is_padded():
    data = riff(fmt(1, 1, 8000, 8), chunk(b"data", bytes([128, 129, 127])), chunk(b"LIST", b"ab"))
    assert len(data) % 2 == 0
    assert read_wav(data).samples().tolist() == [0, 256, -256]


def test_trailing_partial_frame_is_dropped():
    payload = np.array([1, 2, 3], dtype="<i2").tobytes()  # 1.5 stereo frames
    assert read_wav(make_wav(1, 2, 8000, 16, payload)).samples().tolist() == [2]


def test_empty_data_chunk_is_valid_silence():
    pcm = read_wav(make_wav(1, 1, 16000, 16, b""))
    assert (pcm.data, pcm.rate) == (b"", 16000)


def test_header_reports_layout_and_duration_without_decoding():
    h = read_wav_header(make_wav(1, 2, 8000, 16, bytes(4 * 8000)))
    assert (h.encoding, h.channels, h.rate, h.data_offset, h.data_size) == ("s16le", 2, 8000, 44, 32000)
    assert h.duration_s == 1.0


SOX_FILES = {
    "24-bit stereo 44.1 kHz": ("s24-stereo.wav", "-r", "44100", "-c", "2", "-b", "24"),
    "float32 16 kHz": ("f32.wav", "-r", "16000", "-e", "floating-point", "-b", "32"),
    "float64 16 kHz": ("f64.wav", "-r", "16000", "-e", "floating-point", "-b", "64"),
    "mu-law 8 kHz": ("ulaw.wav", "-r", "8000", "-e", "u-law"),
    "a-law 8 kHz": ("alaw.wav", "-r", "8000", "-e", "a-law"),
    "8-bit unsigned 11.025 kHz": ("u8.wav", "-r", "11025", "-b", "8"),
    "32-bit six channels 48 kHz": ("s32-6ch.wav", "-r", "48000", "-c", "6", "-b", "32"),
    "16-bit three channels 22.05 kHz": ("s16-3ch.wav", "-r", "22050", "-c", "3", "-b", "16"),
}


@pytest.mark.parametrize("case", SOX_FILES, ids=str)
def test_sox_made_files_decode_as_sox_decodes_them(case, sox_file):
    name, *options = SOX_FILES[case]
    path = sox_file(name, *options)
    pcm = read_wav(path.read_bytes())
    assert pcm.rate == int(options[1])
    assert pcm.duration_s == pytest.approx(0.5, abs=1e-3)
    expected = sox_raw16(path)
    assert len(expected) == pcm.frames
    assert np.max(np.abs(pcm.samples().astype(int) - expected)) <= 1
    assert 15000 < np.max(np.abs(expected)) < 17000  # the sine at half scale really is there


def test_wav_streamed_by_espeak_ng_reads_to_the_end(speech_wav):
    # espeak-ng --stdout cannot seek back, so its data size says 0x7FFFF000
    streamed = subprocess.run(["espeak-ng", "--stdout", "check my balance please"],
                              check=True, capture_output=True).stdout
    assert struct.unpack_from("<I", streamed, 40)[0] == 0x7FFFF000
    assert read_wav(streamed) == read_wav(speech_wav.read_bytes())


def test_wav_streamed_by_ffmpeg_reads_to_the_end(speech_wav):
    streamed = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(speech_wav), "-f", "wav", "-"],
        check=True, capture_output=True,
    ).stdout
    assert b"data\xff\xff\xff\xff" in streamed
    assert read_wav(streamed) == read_wav(speech_wav.read_bytes())


MALFORMED = {
    "zero channels": (make_wav(1, 0, 8000, 16, bytes(100)), "WAV header declares 0 channels"),
    "zero rate": (make_wav(1, 1, 0, 16, bytes(100)),
                  "WAV header declares a sample rate of 0 Hz (expected 1000 or more)"),
    "PCM 40 bits": (make_wav(1, 1, 8000, 40, bytes(100)), "WAV PCM cannot have 40 bits per sample"),
    "PCM 0 bits": (make_wav(1, 1, 8000, 0, bytes(100)), "WAV PCM cannot have 0 bits per sample"),
    "float 16 bits": (make_wav(3, 1, 8000, 16, bytes(100)), "WAV float cannot have 16 bits per sample"),
    "mu-law 16 bits": (make_wav(7, 1, 8000, 16, bytes(100)),
                       "WAV G.711 cannot have 16 bits per sample"),
    "data claims more than the file holds": (
        riff(fmt(1, 1, 8000, 16), b"data" + struct.pack("<I", 320000) + bytes(1200)),
        "WAV data chunk claims 320000 bytes but the file holds 1200"),
    "other chunk claims more than the file holds": (
        riff(fmt(1, 1, 8000, 16), b"LIST" + struct.pack("<I", 5000) + bytes(10)),
        "WAV 'LIST' chunk claims 5000 bytes but the file holds 10"),
    "no fmt chunk": (riff(chunk(b"LIST", b"ab")), "WAV has no fmt chunk"),
    "no data chunk": (riff(fmt(1, 1, 8000, 16)), "WAV has no data chunk"),
    "data before fmt": (riff(chunk(b"data", bytes(4)), fmt(1, 1, 8000, 16)),
                        "WAV data chunk comes before the fmt chunk"),
    "short fmt chunk": (riff(chunk(b"fmt ", bytes(14)), chunk(b"data", bytes(4))),
                        "WAV fmt chunk is 14 bytes, shorter than 16"),
    "short extensible fmt": (riff(chunk(b"fmt ", struct.pack("<HHIIHH", 0xFFFE, 1, 8000, 16000, 2, 16)),
                                  chunk(b"data", bytes(4))),
                             "WAV extensible fmt chunk is shorter than 40 bytes"),
    "not RIFF": (b"OggS" + bytes(40), "not a WAV file: no RIFF/WAVE header"),
    "RIFF but not WAVE": (b"RIFF\x04\x00\x00\x00AVI ", "not a WAV file: no RIFF/WAVE header"),
    "truncated header": (b"RIFF", "not a WAV file: no RIFF/WAVE header"),
}


@pytest.mark.parametrize("case", MALFORMED, ids=str)
def test_malformed_wav_is_refused_with_a_one_line_reason(case):
    data, reason = MALFORMED[case]
    with pytest.raises(MalformedAudio) as e:
        read_wav(data)
    assert type(e.value) is MalformedAudio
    assert str(e.value) == e.value.reason == reason


UNSUPPORTED = {
    "MP3 in WAV": (make_wav(0x55, 1, 8000, 0, bytes(10)), "WAV format tag 0x0055 (MP3) is not supported"),
    "unnamed tag": (make_wav(0x1234, 1, 8000, 16, bytes(10)), "WAV format tag 0x1234 is not supported"),
    "extensible ADPCM": (make_wav(0xFFFE, 1, 8000, 4, bytes(10), sub=0x11),
                         "WAV format tag 0x0011 (IMA ADPCM) is not supported"),
    "extensible foreign GUID": (
        riff(chunk(b"fmt ", struct.pack("<HHIIHHHHI", 0xFFFE, 1, 8000, 16000, 2, 16, 22, 16, 0)
                   + bytes(range(16))), chunk(b"data", bytes(4))),
        "WAV sub-format 03020100-0504-0706-0809-0a0b0c0d0e0f is not supported"),
    "RF64": (b"RF64" + bytes(40), "RF64 WAV (for files over 4 GB) is not supported"),
    "RIFX": (b"RIFX" + bytes(40), "big-endian RIFX WAV is not supported"),
    "rate over the limit": (make_wav(1, 1, 4_000_000_000, 16, bytes(100)),
                            "WAV header is sampled at 4000000000 Hz; at most 192000 Hz is decoded"),
    "channels over the limit": (make_wav(1, 9, 8000, 16, bytes(180)),
                                "WAV header has 9 channels; at most 8 are decoded"),
}


@pytest.mark.parametrize("case", UNSUPPORTED, ids=str)
def test_unsupported_wav_names_what_it_is(case):
    data, reason = UNSUPPORTED[case]
    with pytest.raises(UnsupportedAudio) as e:
        read_wav(data)
    assert str(e.value) == reason


def test_long_audio_is_refused_from_the_header_before_decoding(monkeypatch):
    def must_not_decode(raw):
        raise AssertionError("decoded despite the limit")
    monkeypatch.setitem(wav.ENCODINGS, "s16le", Encoding("s16le", 2, must_not_decode))
    data = make_wav(1, 2, 8000, 16, bytes(4 * 8000 * 3))  # 3 s of stereo
    with pytest.raises(AudioTooLong) as e:
        read_wav(data, AudioLimits(max_seconds=2.5))
    assert str(e.value) == "WAV lasts 3.0 s, over the 2.5 s limit"
    assert e.value.http_status == 413


def test_audio_exactly_at_the_limit_is_accepted():
    pcm = read_wav(make_wav(1, 1, 8000, 16, bytes(2 * 8000 * 2)), AudioLimits(max_seconds=2.0))
    assert pcm.duration_s == 2.0


def test_written_wav_reads_back_with_the_standard_library(tmp_path, speech):
    path = tmp_path / "out.wav"
    path.write_bytes(wav_bytes(speech))
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, speech.rate)
        assert w.readframes(w.getnframes()) == speech.data
    assert read_wav(path.read_bytes()) == speech


@pytest.mark.parametrize("law, sox_name, tag", [("ulaw", "u-law", 7), ("alaw", "a-law", 6)])
def test_g711_wav_is_read_by_sox_as_8_bit_g711(tmp_path, law, sox_name, tag):
    pcm = Pcm.from_array(np.array([0, 1000, -1000, 32767, -32768, 5, 77]), 8000)  # odd length
    data = g711_wav_bytes(pcm, law)
    assert len(data) % 2 == 0 and struct.unpack_from("<H", data, 20)[0] == tag
    path = tmp_path / f"{law}.wav"
    path.write_bytes(data)
    info = subprocess.run(["sox", "--i", str(path)], check=True, capture_output=True, text=True).stdout
    assert f"8-bit {'u-law' if law == 'ulaw' else 'A-law'}" in info
    assert "Sample Rate    : 8000" in info and "Channels       : 1" in info
    coded = getattr(audioop, f"lin2{law}")(pcm.data, 2)
    expected = np.frombuffer(getattr(audioop, f"{law}2lin")(coded, 2), "<i2")
    assert sox_raw16(path).tolist() == expected.tolist()
    assert read_wav(data).samples().tolist() == expected.tolist()


@settings(max_examples=300, deadline=None)
@given(
    tag=st.sampled_from([1, 3, 6, 7, 0x55, 0xFFFE, 0]),
    sub=st.sampled_from([1, 3, 6, 7, 0x11]),
    channels=st.one_of(st.integers(0, 9), st.just(7000)),  # block align (channels × bytes) fits 16 bits
    rate=st.sampled_from([0, 1, 999, 8000, 44100, 192_000, 384_000, 768_001, 2**32 - 1]),
    bits=st.one_of(st.sampled_from([8, 16, 24, 32, 64]), st.integers(0, 72)),
    payload=st.binary(max_size=300),
    cut=st.one_of(st.just(400), st.integers(0, 400)),  # whole or cut anywhere
)
def test_any_header_gives_audio_or_an_audio_error(tag, sub, channels, rate, bits, payload, cut):
    data = make_wav(tag, channels, rate, bits, payload, sub if tag == 0xFFFE else None)[:cut]
    try:
        pcm = read_wav(data, AudioLimits(max_seconds=0.01))
    except AudioError as e:
        assert "\n" not in str(e)
    else:
        assert pcm.rate == rate <= 192_000 and channels <= 8 and pcm.frames <= len(payload)


FMT_BODY = st.builds(
    lambda tag, channels, rate, bits, extra: struct.pack("<HHIIHH", tag, channels, rate, 0, 0, bits) + extra,
    st.sampled_from([1, 3, 6, 7, 0xFFFE, 0x55]), st.one_of(st.integers(0, 9), st.integers(0, 65535)),
    st.one_of(st.sampled_from([8000, 16000, 384_000]), st.integers(0, 2**32 - 1)),
    st.sampled_from([8, 16, 24, 32, 64, 0, 12]), st.binary(max_size=30))
SIZE = st.one_of(st.none(), st.none(), st.integers(0, 2**32 - 1), st.just(0x7FFF_F000))  # true, or a lie
CHUNKS = st.tuples(
    st.tuples(st.just(b"fmt "), FMT_BODY, SIZE),
    st.tuples(st.just(b"data"), st.binary(max_size=80), SIZE),
    *[st.tuples(st.sampled_from([b"fmt ", b"data", b"LIST", b"fact", bytes(4)]),
                st.one_of(FMT_BODY, st.binary(max_size=40)), SIZE)] * 2,
).flatmap(lambda chunks: st.permutations(chunks[:2]).map(lambda head: [*head, *chunks[2:]]) | st.permutations(chunks))


@settings(max_examples=300, deadline=None)
@given(chunks=CHUNKS, riff_size=st.one_of(st.none(), st.integers(0, 2**32 - 1)))
def test_any_chunk_sequence_gives_audio_within_the_limits_or_an_audio_error(chunks, riff_size):
    body = b"WAVE" + b"".join(
        cid + struct.pack("<I", len(payload) if size is None else size) + payload + b"\0" * (len(payload) & 1)
        for cid, payload, size in chunks)
    data = b"RIFF" + struct.pack("<I", len(body) if riff_size is None else riff_size) + body
    limits = AudioLimits(max_seconds=0.5)
    for decode in (lambda: read_wav(data, limits), lambda: decode_audio(data, None, limits)):
        try:
            pcm = decode()
        except AudioError as e:
            assert "\n" not in str(e)
        else:
            assert MIN_RATE <= pcm.rate <= limits.max_rate
            assert pcm.duration_s <= limits.max_seconds and len(pcm.data) <= 2 * len(data)
