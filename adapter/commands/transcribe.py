"""`kore-voice transcribe`: speech and keypad tones in audio files to text, one line per file."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from adapter.audio.decode import decode_audio
from adapter.audio.dtmf import DtmfKey, detect_keys
from adapter.audio.errors import AudioError
from adapter.audio.files import content_type_of
from adapter.audio.pcm import Pcm
from adapter.config import ConfigError, Settings
from adapter.speech.engines import load_recognizer
from adapter.speech.recognizer import Recognizer
from adapter.speech.settings import ASR_ENGINES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "transcribe",
        help="turn speech and keypad tones in audio files into text",
        description="Prints one result per file: JSON lines when --json is given or the output "
        "is not a terminal, a readable line otherwise. Exit status 2 if any file failed.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="WAV, raw G.711 (.ulaw/.alaw), MP3, OGG, FLAC or WebM")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--engine", choices=ASR_ENGINES, help="speech engine (default: KORE_VOICE_ASR or auto)")
    p.add_argument("--phrases", metavar="A|B|C", help="expected phrases, e.g. menu options, separated by |")
    p.set_defaults(run=run)


@dataclass(frozen=True, slots=True)
class FileResult:
    file: str
    text: str
    digits: str
    duration_s: float
    engine: str
    words: list[dict[str, object]]
    proc_s: float


KEY_PAD_S = 0.03  # a tone's edges, around the detected span, still sound like a syllable


def mute_keys(pcm: Pcm, keys: list[DtmfKey]) -> Pcm:
    """Silence the keypad tones so the recognizer does not hear them as words."""
    if not keys:
        return pcm
    samples = pcm.samples().copy()
    pad = int(KEY_PAD_S * pcm.rate)
    for key in keys:
        start = max(0, int(key.start_s * pcm.rate) - pad)
        samples[start:int((key.end_s or key.start_s) * pcm.rate) + pad] = 0
    return Pcm(samples.tobytes(), pcm.rate)


def transcribe_file(path: Path, recognizer: Recognizer, settings: Settings,
                    hints: list[str] | None) -> FileResult:
    data = path.read_bytes()
    pcm = decode_audio(data, content_type_of(path, data), settings.limits)
    keys = detect_keys(pcm)
    started = time.perf_counter()
    transcript = recognizer.transcribe(mute_keys(pcm, keys), hints)
    proc_s = time.perf_counter() - started
    return FileResult(
        file=str(path),
        text=transcript.text,
        digits="".join(k.key for k in keys),
        duration_s=round(pcm.duration_s, 3),
        engine=recognizer.name,
        words=[{"word": w.text, "start_s": round(w.start_s, 3), "end_s": round(w.end_s, 3),
                "confidence": round(w.confidence, 3)} for w in transcript.words],
        proc_s=round(proc_s, 3),
    )


def show(result: FileResult, as_json: bool) -> str:
    if as_json:
        return json.dumps(asdict(result), ensure_ascii=False)
    parts = [f"{result.file}: {result.text!r}"]
    if result.digits:
        parts.append(f"digits {result.digits}")
    parts.append(f"({result.duration_s:.2f} s audio, {result.proc_s:.2f} s {result.engine})")
    return "  ".join(parts)


def readable(names: list[str]) -> list[Path]:
    """The files that can be opened; one stderr line for each other, before any model loads (seconds)."""
    found = []
    for name in names:
        try:
            with open(name, "rb"):
                found.append(Path(name))
        except OSError as exc:
            print(f"kore-voice: {name}: {exc.strerror or exc}", file=sys.stderr)
    return found


def engine_for(settings: Settings, flag: str | None) -> Recognizer:
    """The recognizer; a problem with the engine asked for by --engine names the flag, not the setting."""
    try:
        return load_recognizer(settings.asr)
    except ConfigError as exc:
        if flag is None:
            raise
        raise ConfigError(str(exc).replace(f"KORE_VOICE_ASR={flag}", f"--engine {flag}")) from None


def run(args: argparse.Namespace) -> int:
    environ = {**os.environ, "KORE_VOICE_ASR": args.engine} if args.engine else None
    settings = Settings.load(args.config, environ)
    paths = readable(args.files)
    failed = len(paths) < len(args.files)
    if not paths:
        return 2
    recognizer = engine_for(settings, args.engine)
    hints = [p.strip() for p in args.phrases.split("|") if p.strip()] if args.phrases else None
    as_json = args.json or not sys.stdout.isatty()
    for path in paths:
        try:
            result = transcribe_file(path, recognizer, settings, hints)
        except AudioError as exc:
            print(f"kore-voice: {path}: {exc.reason}", file=sys.stderr)
            failed = True
            continue
        except OSError as exc:
            print(f"kore-voice: {path}: {exc.strerror or exc}", file=sys.stderr)
            failed = True
            continue
        print(show(result, as_json), flush=True)
    return 2 if failed else 0

