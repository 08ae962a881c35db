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


# What a file's name says it holds: the --format each extension takes (the first is its default) and
# the encoding written for it. A .wav file always gets a WAV container (G.711 inside one: format tag 7
# or 6), so players open it; headerless G.711 bytes go only into files named for them.
FITS: dict[str, dict[str, str]] = {
    ".wav": {"wav16k": "wav16k", "wav8k": "wav8k", "ulaw8k": "wav-ulaw8k", "alaw8k": "wav-alaw8k"},
    ".mp3": {"mp3": "mp3"},
    **dict.fromkeys((".ulaw", ".mulaw", ".pcmu"), {"ulaw8k": "ulaw8k"}),
    **dict.fromkeys((".alaw", ".pcma"), {"alaw8k": "alaw8k"}),
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("say", help="synthesize a text to an audio file")
    p.add_argument("text", metavar="TEXT", help="plain text, markdown or SSML (<break>, <say-as>, <prosody>)")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help=".wav (a WAV file, G.711 in a WAV container with ulaw8k/alaw8k), .mp3, "
                   ".ulaw or .alaw (headerless G.711); any other name takes --format as is")
    p.add_argument("--format", choices=SAY_FORMATS,
                   help="output format (default: from the file extension: .mp3 -> mp3, .ulaw -> ulaw8k, "
                   ".alaw -> alaw8k, else wav16k)")
    p.add_argument("--voice", metavar="V", help="espeak-ng voice: id, language or name (default KORE_VOICE_TTS_VOICE)")
    p.set_defaults(run=run)


def output_format(path: Path, fmt: str | None) -> str:
    """The encoding (a name in FORMATS) written to `path` for `--format fmt`.

    Raises:
        ValueError: the file's extension cannot hold that format (MP3 bytes in a .wav).
    """
    fits = FITS.get(path.suffix.lower())
    if fits is None:
        return fmt or "wav16k"
    chosen = fmt or next(iter(fits))
    if chosen not in fits:
        raise ValueError(f"a {path.suffix} file cannot hold {chosen}; use --format {' or '.join(fits)}, "
                           f"or name the file .{FORMATS[chosen].extension}")
    return fits[chosen]


async def _say(settings: Settings, text: str, fmt: str, voice: str | None) -> bytes:
    async with Synthesizer(settings.tts) as synthesizer:
        return await synthesizer.render(text, fmt, voice)


def run(args: argparse.Namespace) -> int:
    settings = Settings.load(args.config)
    path = Path(args.output)
    try:
        fmt = output_format(path, args.format)
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
