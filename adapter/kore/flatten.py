"""One bot message (text, template, custom JSON) to what a voice channel can use (specs §4.7-4.8).

A message's `val` may be plain text, an object, a JSON string, or (v1) an HTML-escaped JSON string.
It flattens to the text to show, the text to speak (`speech_hint` preferred), its selectable options
(buttons, quick replies, list and carousel items) and the custom `voice` object, if any.

Kore's own templates are read as the SDKs read them. Any other JSON a bot designer puts in a channel
override (LivePerson-style `RichContentEvent`/`ContentEvent`, nested `vertical`/`accordion`/`button`
elements, specs §4.1) is walked in document order: its `text`, `title`, `subtitle` and `message`
strings are said and its buttons (a title plus a postback, `publishText` or payload) become options,
so no reply is silently empty.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapter.speech.plain_text import plain_text, spoken_text

# Buttons a caller cannot "press" by voice or keypad: they open a page or dial from a handset.
_NOT_SELECTABLE = ("web_url", "url", "phone_number")
# Strings of an unknown JSON template that are meant to be read, and keys never read as content.
_SAID_KEYS = ("text", "title", "subtitle", "message")
_NOT_CONTENT = ("voice", "allPostbackButtons", "speech_hint")
# v1 renders a confirmation node as "question\nYes, No, " (BOTIUM fixtures, §4.1).
_CONFIRMATION = re.compile(r"\n((?:[^,\n]+,[ \t]*){2,})$")


@dataclass(frozen=True, slots=True)
class Option:
    """A choice the bot offered: its label and what to send back when it is chosen."""

    title: str
    payload: str


@dataclass(frozen=True, slots=True)
class Flat:
    text: str = ""  # plain text to show
    speech: str = ""  # plain text to speak
    options: tuple[Option, ...] = ()
    voice: Mapping[str, Any] | None = None  # the custom call-control object (adapter/kore/README.md)


def parse_val(val: Any) -> Any:
    """A message value as data: objects as-is, JSON (possibly HTML-escaped) decoded, else the text."""
    if not isinstance(val, str):
        return val
    text = html.unescape(val).strip()
    if text[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text


def flatten(val: Any) -> Flat:
    """Flatten one message value; unknown shapes give an empty `Flat` (nothing to say)."""
    data = parse_val(val)
    if isinstance(data, str):
        return _flatten_text(data)
    if isinstance(data, Mapping):
        return _flatten_object(data)
    if isinstance(data, list):
        return _merge([flatten(item) for item in data])
    return Flat()


def _flatten_text(text: str) -> Flat:
    options: tuple[Option, ...] = ()
    m = _CONFIRMATION.search(text)
    if m:
        titles = [t.strip() for t in m[1].split(",") if t.strip()]
        options = tuple(Option(t, t) for t in titles)
        text = text[: m.start()]
    return Flat(plain_text(text), spoken_text(text), options)


def _flatten_object(obj: Mapping[str, Any]) -> Flat:
    payload = _mapping(obj.get("payload"))
    file_payload = _mapping(_mapping(obj.get("file")).get("payload"))
    elements = [e for e in payload.get("elements") or () if isinstance(e, Mapping)]
    text = _first_text(payload.get("text"), obj.get("text"), payload.get("title"), file_payload.get("title"))
    if not text and elements:
        text = "\n".join(" ".join(_first_text(e.get(k)) for k in ("title", "subtitle")).strip()
                         for e in elements)
    hint = _first_text(payload.get("speech_hint"), obj.get("speech_hint"))
    voice = obj.get("voice") if isinstance(obj.get("voice"), Mapping) else None
    options = _options(payload, elements)
    if not (text or options):
        said: list[str] = []
        found: list[Option] = []
        _walk(obj, said, found)
        text, options = "\n".join(said), tuple(found)
    return Flat(plain_text(text), spoken_text(hint or text), options, voice)


def _walk(node: Any, said: list[str], options: list[Option]) -> None:
    """Collect an unknown template's readable strings and buttons, in document order."""
    if isinstance(node, list):
        for item in node:
            _walk(item, said, options)
        return
    if not isinstance(node, Mapping):
        return
    if _is_button(node):
        option = _button_option(node)
        if option is not None:
            options.append(option)
        return  # a link or dial button: nothing a caller can choose
    for key, value in node.items():
        if key in _SAID_KEYS and isinstance(value, str):
            if value.strip():
                said.append(html.unescape(value))  # channel overrides are often escaped twice
        elif key not in _NOT_CONTENT:
            _walk(value, said, options)


def _is_button(node: Mapping[str, Any]) -> bool:
    return (node.get("type") in ("button", "postback", *_NOT_SELECTABLE) or "click" in node
            or "content_type" in node or isinstance(node.get("payload"), (str, int, float)))


def _button_option(button: Mapping[str, Any]) -> Option | None:
    """A button a caller can press: a title and what it sends (payload, value or `publishText`)."""
    title = _first_text(button.get("title"))
    if not title or button.get("type") in _NOT_SELECTABLE:
        return None
    actions = _mapping(button.get("click")).get("actions")
    published = [a.get("text") for a in actions or () if isinstance(a, Mapping) and a.get("type") == "publishText"]
    back = _first_text(button.get("payload"), button.get("value"), *published)
    if not back and button.get("type") == "postback":
        back = title
    return Option(plain_text(html.unescape(title)), back) if back else None


def _options(payload: Mapping[str, Any], elements: list[Mapping[str, Any]]) -> tuple[Option, ...]:
    raw: list[Any] = []
    for element in elements:  # list / carousel items first, then the template's own buttons
        raw.extend(element.get("buttons") or [{"title": element.get("title")}])
    raw.extend(payload.get("buttons") or payload.get("quick_replies") or ())
    options = []
    for item in raw:
        if not isinstance(item, Mapping) or item.get("type") in _NOT_SELECTABLE:
            continue
        title = _first_text(item.get("title"))
        if title:
            back = _first_text(item.get("payload"), item.get("value")) or title
            options.append(Option(plain_text(title), back))
    return tuple(options)


def _merge(flats: list[Flat]) -> Flat:
    voice = next((f.voice for f in reversed(flats) if f.voice is not None), None)
    return Flat("\n".join(f.text for f in flats if f.text), " ".join(f.speech for f in flats if f.speech),
                tuple(o for f in flats for o in f.options), voice)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _first_text(*values: Any) -> str:
    for value in values:
        if isinstance(value, str) and value.strip():
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
    return ""
