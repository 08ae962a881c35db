"""Synthesizer: real espeak-ng prompts in every output format, voices, cache, and `kore-voice say`."""

import asyncio
import wave
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest

from adapter.audio.decode import decode_audio
from adapter.cli import main
from adapter.config import ConfigError
from adapter.speech.settings import TtsSettings
from adapter.speech.synthesizer import Synthesizer
from adapter.speech.tts_worker import Voice

WELCOME = "Welcome to the bank. Say balance or press 1."


@pytest.fixture
async def synthesizer(tmp_path: Path):
    async with Synthesizer(TtsSettings(cache_dir=tmp_path / "tts")) as s:
        yield s


@pytest.mark.parametrize(
    ("fmt", "content_type", "rate"),
    [("wav16k", "audio/wav", 16000), ("wav8k", "audio/wav", 8000), ("ulaw8k", "audio/basic", 8000),
     ("alaw8k", "audio/PCMA", 8000), ("mp3", "audio/mpeg", None)],
)
async def test_renders_each_format_with_its_rate_and_duration(synthesizer, fmt, content_type, rate):
    audio = await synthesizer.render(WELCOME, fmt)  # the loop guard (tests/conftest.py): MP3's ffmpeg runs off it
    pcm = await asyncio.to_thread(decode_audio, audio, content_type)
    if rate:
        assert pcm.rate == rate
    assert 2.0 < pcm.duration_s < 5.0
    assert np.abs(pcm.samples()).max() > 3000


async def test_wav_output_is_16_bit_mono(synthesizer):
    with wave.open(BytesIO(await synthesizer.render("Hello", "wav8k"))) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000)


async def test_ssml_pauses_lengthen_the_prompt(synthesizer):
    plain = await synthesizer.pcm("Hello there", 16000)
    paused = await synthesizer.pcm('Hello <break time="1s"/> there', 16000)
    assert paused.duration_s - plain.duration_s > 0.8
    tail = paused.samples()[int(0.6 * 16000):]
    assert (np.abs(tail) < 50).sum() > 0.8 * 16000      # a second of real silence in the middle


async def test_cache_serves_the_same_bytes_and_is_keyed_by_format_and_voice(synthesizer):
    first = await synthesizer.render(WELCOME, "ulaw8k")
    misses = synthesizer.cache.misses
    assert await synthesizer.render(WELCOME, "ulaw8k") is first
    assert synthesizer.cache.misses == misses
    assert await synthesizer.render(WELCOME, "wav8k") != first
    assert await synthesizer.render(WELCOME, "ulaw8k", voice="en-gb") != first


async def test_prerender_fills_the_cache(synthesizer):
    await synthesizer.prerender(["One moment please.", "Sorry, I didn't catch that."], ["ulaw8k", "wav16k"])
    assert len(synthesizer.cache.memory) == 4
    assert len(list(synthesizer.settings.cache_dir.glob("*.audio"))) == 4


def test_voice_names_resolve_to_espeak_ids():
    s = Synthesizer(TtsSettings())
    s._voices = {"gmw/en-us": "gmw/en-us", "en-us": "gmw/en-us", "english (america)": "gmw/en-us"}
    assert s.resolve_voice("EN-US") == "gmw/en-us"
    assert s.resolve_voice("English (America)+f3") == "gmw/en-us+f3"
    with pytest.raises(ValueError, match="unknown voice 'martian'; try one of en-us"):
        s.resolve_voice("martian")


async def test_unknown_configured_voice_fails_at_start():
    with pytest.raises(ConfigError, match="KORE_VOICE_TTS_VOICE: unknown voice 'martian'"):
        async with Synthesizer(TtsSettings(voice="martian")):
            pass


def test_voice_index_prefers_ids_then_languages():
    from adapter.speech.synthesizer import voice_index
    index = voice_index([Voice("gmw/en", "English (Great Britain)", ("en-gb",)),
                         Voice("gmw/en-us", "English (America)", ("en-us",))])
    assert index["en"] == "gmw/en" and index["en-gb"] == "gmw/en" and index["en-us"] == "gmw/en-us"


@pytest.mark.parametrize(("fmt", "suffix", "rate"), [("wav8k", ".wav", 8000), (None, ".wav", 16000),
                                                       (None, ".mp3", None), ("ulaw8k", ".raw", 8000)])
def test_say_command_writes_the_file(tmp_path, capsys, fmt, suffix, rate):
    out = tmp_path / f"prompt{suffix}"
    args = ["say", "Your balance is $42.10.", "-o", str(out)] + (["--format", fmt] if fmt else [])
    assert main(args) == 0
    content_type = {".mp3": "audio/mpeg", ".raw": "audio/basic"}.get(suffix, "audio/wav")
    pcm = decode_audio(out.read_bytes(), content_type)
    assert 2.0 < pcm.duration_s < 6.0 and (rate is None or pcm.rate == rate)
    assert str(out) in capsys.readouterr().out


def test_say_command_reports_a_bad_voice_in_one_line(tmp_path, capsys):
    assert main(["say", "hi", "-o", str(tmp_path / "x.wav"), "--voice", "martian"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kore-voice: unknown voice 'martian'") and err.count("\n") == 1
    assert not (tmp_path / "x.wav").exists()
