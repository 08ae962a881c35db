"""Scripted bots for the simulator: the YAML format, read into frozen steps (see default_bot.yaml).

A script has `name`, `welcome` steps (answer to ON_CONNECT / a v1 new session), `fallback` steps
(nothing matched) and `intents`, each matched by `keywords` (whole words) or `regex` and running
`steps`. A step is one of:

    say: TEXT | {text: TEXT, speech_hint: TEXT}     a text message (markdown allowed, {slot} filled)
    menu: {text, options: [{title, payload}], kind: button|quick_replies, speech_hint}
    template: {...}                                 any Kore template object, sent as-is
    voice: {action: hangup|transfer, to, text}      the call-control payload (adapter/kore/README.md)
    ask: {slot, say, pattern, retry, speech, digits: {num|min|max|finishOnKey}}   wait for an answer
    wait: SECONDS                                   a slow node: later messages come after a delay
    fail: {status: 504, times: 1}                   the request fails (the first `times` tries)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from adapter.config_reader import ConfigError

DEFAULT_SCRIPT = "default_bot.yaml"


class ScriptError(ConfigError):
    """A bot script that cannot be used; the message is one line naming the file and the place."""


@dataclass(frozen=True, slots=True)
class Message:
    """A step that sends one message: its `val` (text or object) is filled with slots when text."""

    val: str | dict[str, Any]


@dataclass(frozen=True, slots=True)
class Ask:
    slot: str
    prompt: str | dict[str, Any]  # text, or {"text", "voice": {"input": ...}} when keys are wanted
    pattern: re.Pattern[str] | None
    retry: str | dict[str, Any]
    digits: bool  # the answer is keypad digits: spaces and "#" are dropped before matching


@dataclass(frozen=True, slots=True)
class Wait:
    seconds: float


@dataclass(frozen=True, slots=True)
class Fail:
    status: int
    times: int | None  # None: always


Step = Message | Ask | Wait | Fail


@dataclass(frozen=True, slots=True)
class Intent:
    name: str
    patterns: tuple[re.Pattern[str], ...]
    steps: tuple[Step, ...]

    def matches(self, text: str) -> bool:
        return any(p.search(text) for p in self.patterns)


@dataclass(frozen=True, slots=True)
class Script:
    name: str
    welcome: tuple[Step, ...]
    fallback: tuple[Step, ...]
    intents: tuple[Intent, ...]

    def intent_for(self, text: str) -> Intent | None:
        return next((i for i in self.intents if i.matches(text)), None)


def load_script(path: Path | None = None) -> Script:
    """Read a script file, or the built-in banking IVR when `path` is None."""
    if path is None:
        source = DEFAULT_SCRIPT
        text = resources.files(__package__).joinpath(DEFAULT_SCRIPT).read_text()
    else:
        source = str(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ScriptError(f"{source}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScriptError(f"{source}: not valid YAML: {' '.join(str(exc).split())}") from None
    return parse_script(data, source)


def parse_script(data: Any, source: str = "script") -> Script:
    if not isinstance(data, dict):
        raise ScriptError(f"{source}: a script is a mapping with name, welcome, fallback and intents")
    intents = []
    for name, spec in (data.get("intents") or {}).items():
        where = f"{source}: intent {name}"
        if not isinstance(spec, dict):
            raise ScriptError(f"{where}: must be a mapping")
        patterns = [re.compile(rf"\b{re.escape(k)}\b", re.I) for k in _strings(spec.get("keywords"), where)]
        try:
            patterns += [re.compile(r, re.I) for r in _strings(spec.get("regex"), where)]
        except re.error as exc:
            raise ScriptError(f"{where}: bad regex: {exc}") from None
        if not patterns:
            raise ScriptError(f"{where}: needs keywords or regex")
        intents.append(Intent(str(name), tuple(patterns), _steps(spec.get("steps"), where)))
    return Script(str(data.get("name") or "Simulated bot"), _steps(data.get("welcome"), f"{source}: welcome"),
                  _steps(data.get("fallback"), f"{source}: fallback"), tuple(intents))


def _steps(raw: Any, where: str) -> tuple[Step, ...]:
    if not isinstance(raw, list) or not raw:
        raise ScriptError(f"{where}: steps must be a non-empty list")
    return tuple(_step(item, f"{where} step {i + 1}") for i, item in enumerate(raw))


def _step(raw: Any, where: str) -> Step:
    if not isinstance(raw, dict) or len(raw) != 1:
        raise ScriptError(f"{where}: a step is a mapping with one key "
                          "(say, menu, template, voice, ask, wait, fail)")
    (kind, spec), = raw.items()
    if kind == "say":
        return Message(_say(spec, where))
    if kind == "menu":
        return Message(_menu(spec, where))
    if kind == "template" and isinstance(spec, dict):
        return Message(spec)
    if kind == "voice" and isinstance(spec, dict):
        text = spec.get("text")
        voice = {k: v for k, v in spec.items() if k != "text"}
        return Message({"text": text, "voice": voice} if text else {"voice": voice})
    if kind == "ask" and isinstance(spec, dict):
        return _ask(spec, where)
    if kind == "wait" and isinstance(spec, (int, float)) and spec >= 0:
        return Wait(float(spec))
    if kind == "fail" and isinstance(spec, dict) and isinstance(spec.get("status"), int):
        times = spec.get("times")
        if times is not None and (not isinstance(times, int) or times < 1):
            raise ScriptError(f"{where}: fail times must be a positive whole number")
        return Fail(spec["status"], times)
    raise ScriptError(f"{where}: cannot read step {kind!r}")


def _say(spec: Any, where: str) -> str | dict[str, Any]:
    if isinstance(spec, str):
        return spec
    if isinstance(spec, dict) and isinstance(spec.get("text"), str):
        if spec.get("speech_hint"):
            return {"type": "template", "payload": {"text": spec["text"], "speech_hint": spec["speech_hint"]}}
        return spec["text"]
    raise ScriptError(f"{where}: say takes a text or {{text, speech_hint}}")


def _menu(spec: Any, where: str) -> dict[str, Any]:
    if not isinstance(spec, dict) or not isinstance(spec.get("text"), str):
        raise ScriptError(f"{where}: menu needs a text")
    options = spec.get("options")
    if not isinstance(options, list) or not all(isinstance(o, dict) and o.get("title") for o in options):
        raise ScriptError(f"{where}: menu options are a list of {{title, payload}}")
    kind = spec.get("kind", "button")
    if kind == "button":
        items = [{"type": "postback", "title": o["title"], "payload": o.get("payload", o["title"])}
                 for o in options]
    elif kind == "quick_replies":
        items = [{"content_type": "text", "title": o["title"], "payload": o.get("payload", o["title"])}
                 for o in options]
    else:
        raise ScriptError(f"{where}: menu kind must be button or quick_replies")
    payload: dict[str, Any] = {"template_type": kind, "text": spec["text"],
                               ("buttons" if kind == "button" else "quick_replies"): items}
    if spec.get("speech_hint"):
        payload["speech_hint"] = spec["speech_hint"]
    return {"type": "template", "payload": payload}


def _ask(spec: dict[str, Any], where: str) -> Ask:
    if not isinstance(spec.get("slot"), str) or not isinstance(spec.get("say"), str):
        raise ScriptError(f"{where}: ask needs slot and say")
    try:
        pattern = re.compile(spec["pattern"]) if spec.get("pattern") else None
    except re.error as exc:
        raise ScriptError(f"{where}: bad pattern: {exc}") from None
    digits = spec.get("digits")
    prompt: str | dict[str, Any] = spec["say"]
    if digits is not None:
        prompt = {"text": spec["say"], "voice": {"input": {"speech": bool(spec.get("speech", True)),
                                                           "digits": digits}}}
    retry = spec.get("retry") or spec["say"]
    if isinstance(prompt, dict):
        retry = {**prompt, "text": retry}
    return Ask(spec["slot"], prompt, pattern, retry, digits is not None)


def _strings(raw: Any, where: str) -> list[str]:
    if raw is None:
        return []
    items = raw if isinstance(raw, list) else [raw]
    if not all(isinstance(i, str) and i for i in items):
        raise ScriptError(f"{where}: keywords and regex are texts")
    return items
