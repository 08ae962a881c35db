import audioop

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapter.audio.errors import MalformedAudio
from adapter.audio.g711 import alaw_to_pcm16, pcm16_to_alaw, pcm16_to_ulaw, ulaw_to_pcm16

EVERY_CODE = bytes(range(256))
EVERY_SAMPLE = np.arange(-32768, 32768, dtype="<i2").tobytes()


def test_ulaw_decode_matches_audioop_for_all_256_codes():
    assert ulaw_to_pcm16(EVERY_CODE) == audioop.ulaw2lin(EVERY_CODE, 2)


def test_alaw_decode_matches_audioop_for_all_256_codes():
    assert alaw_to_pcm16(EVERY_CODE) == audioop.alaw2lin(EVERY_CODE, 2)


def test_ulaw_encode_matches_audioop_for_all_65536_samples():
    assert pcm16_to_ulaw(EVERY_SAMPLE) == audioop.lin2ulaw(EVERY_SAMPLE, 2)


def test_alaw_encode_matches_audioop_for_all_65536_samples():
    assert pcm16_to_alaw(EVERY_SAMPLE) == audioop.lin2alaw(EVERY_SAMPLE, 2)


def test_silence_codes():
    # specs/telephony.md §9.1: μ-law silence is 0xFF, A-law 0xD5
    assert pcm16_to_ulaw(bytes(4)) == b"\xff\xff"
    assert pcm16_to_alaw(bytes(4)) == b"\xd5\xd5"
    assert ulaw_to_pcm16(b"\xff\x7f") == bytes(4)


def test_codes_survive_decode_then_encode():
    assert pcm16_to_alaw(alaw_to_pcm16(EVERY_CODE)) == EVERY_CODE
    # μ-law has two zeros; 0x7F ("negative zero") comes back as 0xFF
    assert pcm16_to_ulaw(ulaw_to_pcm16(EVERY_CODE)) == EVERY_CODE.replace(b"\x7f", b"\xff")


def test_empty_input_gives_empty_output():
    assert ulaw_to_pcm16(b"") == alaw_to_pcm16(b"") == pcm16_to_ulaw(b"") == pcm16_to_alaw(b"") == b""


@pytest.mark.parametrize("encode", [pcm16_to_ulaw, pcm16_to_alaw])
def test_odd_pcm_byte_count_is_malformed(encode):
    with pytest.raises(MalformedAudio, match="^16-bit PCM needs an even number of bytes, got 3$"):
        encode(b"\x00\x01\x02")


@settings(deadline=None)  # a loaded machine must not fail a property on time alone
@given(st.binary(max_size=4000))
def test_decoding_any_bytes_matches_audioop(codes):
    assert ulaw_to_pcm16(codes) == audioop.ulaw2lin(codes, 2)
    assert alaw_to_pcm16(codes) == audioop.alaw2lin(codes, 2)


samples = st.lists(st.integers(-32768, 32767), max_size=2000).map(lambda v: np.array(v, dtype="<i2"))


@settings(deadline=None)  # a loaded machine must not fail a property on time alone
@given(samples)
def test_encoding_any_samples_matches_audioop(x):
    assert pcm16_to_ulaw(x.tobytes()) == audioop.lin2ulaw(x.tobytes(), 2)
    assert pcm16_to_alaw(x.tobytes()) == audioop.lin2alaw(x.tobytes(), 2)


@settings(deadline=None)  # a loaded machine must not fail a property on time alone
@given(samples)
def test_round_trip_error_stays_within_one_quantisation_step(x):
    for encode, decode in ((pcm16_to_ulaw, ulaw_to_pcm16), (pcm16_to_alaw, alaw_to_pcm16)):
        back = np.frombuffer(decode(encode(x.tobytes())), dtype="<i2").astype(int)
        error = np.abs(back - x.astype(int))
        # the step doubles with each segment: the error is at most about |x|/16, plus 8
        assert np.all(error <= (np.abs(x.astype(int)) >> 4) + 8)
        assert len(back) == len(x)
