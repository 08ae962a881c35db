"""Small compressed files that expand to gigabytes: refused from the header, or cut off while decoding,
and either way the decoding process's memory barely moves (measured in a fresh interpreter)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from adapter.audio.decode import decode_audio
from adapter.audio.errors import AudioTooLong, UnsupportedAudio

# Decodes a file in a fresh interpreter and reports the error (if any) and the growth of its peak RSS
# (VmHWM: unlike ru_maxrss, it is not inherited from the parent across fork and exec).
MEASURE = """
import json, re, sys
from adapter.audio.decode import decode_audio
from adapter.audio.errors import AudioError
def peak_kb():
    return int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))
data = open(sys.argv[1], "rb").read()
decode_audio(open(sys.argv[2], "rb").read(), "audio/flac")  # warm up: first use allocates buffers
before = peak_kb()
try:
    error = repr(decode_audio(data, "audio/flac"))
except AudioError as e:
    error = f"{type(e).__name__}: {e}"
print(json.dumps({"error": error, "growth_mb": (peak_kb() - before) / 1024}))
"""


def flac_silence(path: Path, rate: int, layout: str, seconds: int) -> Path:
    """Silence as FLAC written to a pipe, as a streaming encoder would: no sample count in the header."""
    if not path.exists():
        path.write_bytes(subprocess.run(
            ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"anullsrc=r={rate}:cl={layout}", "-t", str(seconds),
             "-c:a", "flac", "-sample_fmt", "s32", "-f", "flac", "-"], check=True, capture_output=True).stdout)
    return path


@pytest.fixture(scope="module")
def bomb(media_dir: Path) -> Path:
    """The reported one: 59 s of 384 kHz 7.1 silence, 24-bit samples in 32-bit words (700 MB decoded)."""
    return flac_silence(media_dir / "bomb.flac", 384_000, "7.1", 59)


@pytest.fixture(scope="module")
def long_bomb(media_dir: Path) -> Path:
    """Within the rate and channel limits, but 3 minutes long and not saying so (550 MB decoded)."""
    return flac_silence(media_dir / "long-bomb.flac", 48_000, "7.1", 180)


def decode_in_a_fresh_process(path: Path, warm_up: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", MEASURE, str(path), str(warm_up)],
                          check=True, capture_output=True, text=True, timeout=120)
    return json.loads(done.stdout)


def test_the_reported_bomb_is_small_on_the_wire(bomb, long_bomb):
    assert bomb.stat().st_size < 40_000 and long_bomb.stat().st_size < 120_000


# bomb fixture: error, its status and reason, the most the decoding process may grow (MB)
CASES = {
    # refused from the header: nothing decoded
    "bomb": (UnsupportedAudio, 415, "FLAC is sampled at 384000 Hz; at most 192000 Hz is decoded", 10),
    # decoded to mono 16-bit by ffmpeg and cut at 60 s: 5.8 MB held, not the 550 MB of 7.1 32-bit
    "long_bomb": (AudioTooLong, 413, "FLAC audio runs past the 60 s limit", 40),
}


@pytest.mark.parametrize("name", CASES)
def test_a_bomb_is_refused_and_costs_little_memory(name, request, media_dir):
    error, status, reason, max_growth_mb = CASES[name]
    path = request.getfixturevalue(name)
    with pytest.raises(error) as e:
        decode_audio(path.read_bytes(), "audio/flac")
    assert (e.value.http_status, str(e.value)) == (status, reason)
    measured = decode_in_a_fresh_process(path, flac_silence(media_dir / "short.flac", 8000, "mono", 1))
    assert measured["error"] == f"{error.__name__}: {reason}"
    assert measured["growth_mb"] < max_growth_mb
