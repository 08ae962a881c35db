"""A conversation script for `kore-voice call`: what to send each turn and what to expect back.

Format (YAML):

    from: "+15551230000"           # optional caller and called numbers
    to: "+15559870000"
    welcome:                       # optional: what the call's start must bring
      bot: "Welcome to Demo Bank"  #   a regex searched in the bot's texts (joined by spaces)
      menu: [Check balance, Transfer money, Talk to an agent]   # the menu's labels, in order
    steps:
      - send_digits: "1"                    # keypad keys, as a REST turn's {"digits"}
        expect: {transcript: balance, bot: 'balance is \\$2,450\\.18'}
      - send_wav: check_my_balance_16k.wav  # a file relative to the script (WAV, or raw .ulaw/.alaw)
        expect: {transcript: check my balance}
      - send_silence: 1.0                   # seconds of silence (16 kHz WAV)
      - send_digits: "3"
        expect: {end_of_call: true}         # the bot hung up or transferred

`expect` keys: `transcript` (what the service heard, compared without case, punctuation or number forms:
"Check my balance." matches `check my balance`, "two four six eight" matches `2468`), `bot`,
`menu`, `end_of_call` (true or false). Every key is optional.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from adapter.audio.errors import AudioError
from adapter.audio.files import content_type_of
from adapter.audio.pcm import Pcm
from adapter.audio.wav import wav_bytes
from adapter.calls.keypad import DTMF_KEYS, MAX_DIGITS

MAX_SILENCE_S = 30.0
SILENCE_RATE = 16000
EXPECT_KEYS = ("transcript", "bot", "menu", "end_of_call")


class ScriptError(Exception):
    """The script cannot be run; the message is one line naming where."""


@dataclass(frozen=True, slots=True)
class Expect:
    transcript: str | None = None
    bot: re.Pattern[str] | None = None
    menu: tuple[str, ...] | None = None
    end_of_call: bool | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """One caller turn: `digits`, or `audio` of `content_type`; `label` says what was sent."""

    label: str
    expect: Expect
    digits: str | None = None
    audio: bytes = b""
    content_type: str = ""


@dataclass(frozen=True, slots=True)
class CallScript:
    caller: str
    called: str
    welcome: Expect
    steps: tuple[Step, ...]


def _text(value: object, where: str) -> str:
    if not isinstance(value, (str, int)) or isinstance(value, bool) or not str(value).strip():
        raise ScriptError(f"{where} must be a non-empty string")
    return str(value)


def parse_expect(value: object, where: str, transcript: bool = True) -> Expect:
    if value is None:
        return Expect()
    if not isinstance(value, dict):
        raise ScriptError(f"{where} must be a mapping of {', '.join(EXPECT_KEYS)}")
    allowed = EXPECT_KEYS if transcript else EXPECT_KEYS[1:]
    unknown = [k for k in value if k not in allowed]
    if unknown:
        raise ScriptError(f"{where}: unknown key {unknown[0]!r}; use {', '.join(allowed)}")
    bot = None
    if "bot" in value:
        try:
            bot = re.compile(_text(value["bot"], f"{where}.bot"))
        except re.error as exc:
            raise ScriptError(f"{where}.bot is not a regex: {exc}") from None
    menu = value.get("menu")
    if menu is not None and (not isinstance(menu, list) or not all(isinstance(m, str) for m in menu)):
        raise ScriptError(f"{where}.menu must be a list of labels")
    end = value.get("end_of_call")
    if end is not None and not isinstance(end, bool):
        raise ScriptError(f"{where}.end_of_call must be true or false")
    said = value.get("transcript")
    if said is not None and not isinstance(said, (str, int)):
        raise ScriptError(f'{where}.transcript must be a string ("" for nothing heard)')
    return Expect(None if said is None else str(said), bot, tuple(menu) if menu is not None else None, end)


def parse_step(value: object, where: str, folder: Path) -> Step:
    if not isinstance(value, dict):
        raise ScriptError(f"{where} must be a mapping with one of send_wav, send_digits, send_silence")
    sends = [k for k in ("send_wav", "send_digits", "send_silence") if k in value]
    unknown = [k for k in value if k not in ("send_wav", "send_digits", "send_silence", "expect")]
    if unknown or len(sends) != 1:
        raise ScriptError(f"{where} needs exactly one of send_wav, send_digits, send_silence (and an optional expect)")
    expect = parse_expect(value.get("expect"), f"{where}.expect")
    send, arg = sends[0], value[sends[0]]
    if send == "send_digits":
        digits = "".join(_text(arg, f"{where}.send_digits").split())
        if len(digits) > MAX_DIGITS or any(k not in DTMF_KEYS for k in digits):
            raise ScriptError(f"{where}.send_digits must be 1 to {MAX_DIGITS} keypad keys: 0-9, * and #")
        return Step(f"digits {digits}", expect, digits=digits)
    if send == "send_silence":
        if not isinstance(arg, (int, float)) or isinstance(arg, bool) or not 0 < arg <= MAX_SILENCE_S:
            raise ScriptError(f"{where}.send_silence must be seconds, more than 0 and at most {MAX_SILENCE_S:g}")
        return Step(f"silence {arg:g} s", expect, audio=wav_bytes(Pcm.silence(float(arg), SILENCE_RATE)),
                    content_type="audio/wav")
    path = folder / _text(arg, f"{where}.send_wav")
    try:
        audio = path.read_bytes()
    except OSError as exc:
        raise ScriptError(f"{where}.send_wav: cannot read {path}: {exc.strerror or exc}") from None
    try:
        content_type = content_type_of(path, audio) or "audio/wav"
    except AudioError as exc:
        raise ScriptError(f"{where}.send_wav: {path}: {exc.reason}") from None
    return Step(f"wav {arg}", expect, audio=audio, content_type=content_type)


def load_script(path: Path) -> CallScript:
    """The script at `path`, its files read.

    Raises:
        ScriptError: unreadable, not YAML, or not a script.
    """
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScriptError(f"cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ScriptError(f"{path} is not valid YAML{at}") from None
    if not isinstance(data, dict) or not isinstance(data.get("steps"), list):
        raise ScriptError(f'{path} must be a mapping with a "steps" list')
    unknown = [k for k in data if k not in ("from", "to", "welcome", "steps")]
    if unknown:
        raise ScriptError(f"{path}: unknown key {unknown[0]!r}; use from, to, welcome, steps")
    steps = tuple(parse_step(s, f"steps[{i}]", path.parent) for i, s in enumerate(data["steps"], start=1))
    return CallScript(_text(data.get("from", "+15551230000"), "from"), _text(data.get("to", "+15559870000"), "to"),
                      parse_expect(data.get("welcome"), "welcome", transcript=False), steps)
