"""`kore-voice say`: speak a text (plain, markdown or SSML) into an audio file, as the bot's replies are."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from adapter.audio.encode import FORMATS
from adapter.config import Settings
from adapter.speech.synthesizer import Synthesizer
from adapter.speech.tts_worker import TtsError

SAY_FORMATS = ("wav16k", "wav8k", "ulaw8k", "alaw8k", "mp3")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("say", help="synthesize a text to an audio file")
    p.add_argument("text", metavar="TEXT", help="plain text, markdown or SSML (<break>, <say-as>, <prosody>)")
    p.add_argument("-o", "--output", required=True, metavar="FILE")
    p.add_argument("--format", choices=SAY_FORMATS,
                   help="output format (default: from the file extension, .mp3 -> mp3, else wav16k)")
    p.add_argument("--voice", metavar="V", help="espeak-ng voice: id, language or name (default KORE_VOICE_TTS_VOICE)")
    p.set_defaults(run=run)


def output_format(path: Path, fmt: str | None) -> str:
    if fmt:
        return fmt
    return {".mp3": "mp3", ".ulaw": "ulaw8k", ".alaw": "alaw8k"}.get(path.suffix.lower(), "wav16k")


async def _say(settings: Settings, text: str, fmt: str, voice: str | None) -> bytes:
    async with Synthesizer(settings.tts) as synthesizer:
        return await synthesizer.render(text, fmt, voice)


def run(args: argparse.Namespace) -> int:
    settings = Settings.load(args.config)
    path = Path(args.output)
    fmt = output_format(path, args.format)
    try:
        audio = asyncio.run(_say(settings, args.text, fmt, args.voice))
    except (TtsError, ValueError) as exc:
        print(f"kore-voice: {exc}", file=sys.stderr)
        return 2
    try:
        path.write_bytes(audio)
    except OSError as exc:
        print(f"kore-voice: {path}: {exc.strerror}", file=sys.stderr)
        return 2
    print(f"{path}: {len(audio)} bytes, {FORMATS[fmt].content_type}")
    return 0
