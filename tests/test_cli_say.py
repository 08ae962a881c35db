"""`kore-voice say`: the file written is what its name says, so players open it (real espeak-ng, real sox)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from adapter.audio.g711 import alaw_to_pcm16, ulaw_to_pcm16
from adapter.audio.pcm import Pcm
from adapter.audio.wav import read_wav_header
from adapter.cli import main

TEXT = "Your balance is $42.10."


def sox_info(path: Path) -> dict[str, str]:
    """`sox --i` as a dict: what a player makes of the file."""
    done = subprocess.run(["sox", "--i", str(path)], capture_output=True, text=True, check=True, timeout=30)
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in done.stdout.splitlines()) if v}


def loud(pcm16: bytes) -> bool:
    """Speech, not silence or noise-free garbage."""
    return int(abs(Pcm(pcm16, 8000).samples()).max()) > 3000


@pytest.mark.parametrize(("fmt", "encoding", "sox_encoding", "decode"), [
    ("ulaw8k", "ulaw", "8-bit u-law", ulaw_to_pcm16),
    ("alaw8k", "alaw", "8-bit A-law", alaw_to_pcm16),
])
def test_g711_in_a_wav_name_gets_a_wav_container(tmp_path, capsys, fmt, encoding, sox_encoding, decode):
    out = tmp_path / "balance.wav"
    assert main(["say", TEXT, "-o", str(out), "--format", fmt]) == 0
    assert capsys.readouterr().out.startswith(f"{out}: ")
    data = out.read_bytes()
    header = read_wav_header(data)
    assert (header.encoding, header.rate, header.channels) == (encoding, 8000, 1)
    assert int.from_bytes(data[20:22], "little") == (7 if encoding == "ulaw" else 6)  # the WAV format tag
    assert 1.5 < header.duration_s < 5
    assert loud(decode(data[header.data_offset:header.data_offset + header.data_size]))
    info = sox_info(out)
    assert (info["Channels"], info["Sample Rate"], info["Sample Encoding"]) == ("1", "8000", sox_encoding)


def test_headerless_mu_law_for_raw_names_as_transcribe_reads_them(tmp_path):
    for name, fmt in (("balance.ulaw", []), ("balance.pcmu", []), ("balance.raw", ["--format", "ulaw8k"])):
        out = tmp_path / name
        assert main(["say", TEXT, "-o", str(out), *fmt]) == 0
        data = out.read_bytes()
        assert not data.startswith(b"RIFF") and loud(ulaw_to_pcm16(data)), name


@pytest.mark.parametrize(("name", "fmt", "reason"), [
    ("balance.wav", "mp3", "a .wav file cannot hold mp3; use --format wav16k or wav8k or ulaw8k or alaw8k, "
                           "or name the file .mp3"),
    ("balance.ulaw", "alaw8k", "a .ulaw file cannot hold alaw8k; use --format ulaw8k, or name the file .alaw"),
    ("balance.mp3", "wav8k", "a .mp3 file cannot hold wav8k; use --format mp3, or name the file .wav"),
])
def test_a_name_that_contradicts_the_format_is_one_line_and_no_file(tmp_path, capsys, name, fmt, reason):
    out = tmp_path / name
    assert main(["say", TEXT, "-o", str(out), "--format", fmt]) == 2
    assert capsys.readouterr().err == f"kore-voice: {reason}\n"
    assert not out.exists()
