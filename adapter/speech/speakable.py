"""What to say: plain text, markdown or a small SSML subset, turned into words a TTS voice reads well.

Bots write for screens ("**$42.10** due on 3rd"); a voice needs "forty two dollars and ten cents due
on third". The result is a list of segments: text at a speaking-rate factor, and pauses.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from num2words import num2words

from adapter.speech.plain_text import spoken_text


@dataclass(frozen=True, slots=True)
class Say:
    text: str
    rate_factor: float = 1.0


@dataclass(frozen=True, slots=True)
class Pause:
    seconds: float


Segment = Say | Pause

MAX_PAUSE_S = 5.0
_BREAK_STRENGTH = {"none": 0.0, "x-weak": 0.1, "weak": 0.2, "medium": 0.4, "strong": 0.7, "x-strong": 1.0}
_RATE_WORDS = {"x-slow": 0.5, "slow": 0.75, "medium": 1.0, "default": 1.0, "fast": 1.25, "x-fast": 1.5}
_DIGIT_WORDS = "zero one two three four five six seven eight nine".split()
_CURRENCIES = {"$": ("dollar", "cent"), "€": ("euro", "cent"), "£": ("pound", "penny")}


def words(number: int | float, to: str = "cardinal") -> str:
    """num2words without the hyphens and commas that make a voice stumble."""
    return re.sub(r"[-,]", " ", num2words(number, to=to, lang="en")).replace("  ", " ").strip()


def spell_digits(text: str) -> str:
    """'555-1234' -> 'five five five, one two three four': each digit said on its own."""
    groups = [g for g in re.split(r"[^0-9A-Za-z]+", text) if g]
    return ", ".join(" ".join(_DIGIT_WORDS[int(c)] if c.isdigit() else c.upper() for c in g) for g in groups)


def _plural(unit: str, n: int) -> str:
    if n == 1:
        return unit
    return "pence" if unit == "penny" else unit + "s"


def _money(m: re.Match[str]) -> str:
    major_unit, minor_unit = _CURRENCIES[m["sym"]]
    major = int(m["major"].replace(",", ""))
    minor = int(m["minor"]) if m["minor"] else 0
    parts = []
    if major or not minor:
        parts.append(f"{words(major)} {_plural(major_unit, major)}")
    if minor:
        parts.append(f"{words(minor)} {_plural(minor_unit, minor)}")
    return " and ".join(parts)


def _time(m: re.Match[str]) -> str:
    hour, minute = int(m["h"]), int(m["m"])
    if minute == 0:
        spoken = f"{words(hour)} o'clock" if not m["ampm"] else words(hour)
    elif minute < 10:
        spoken = f"{words(hour)} oh {words(minute)}"
    else:
        spoken = f"{words(hour)} {words(minute)}"
    if m["ampm"]:
        spoken += " " + " ".join(c for c in m["ampm"].lower() if c.isalpha())
        if m["ampm"].endswith("."):  # "a.m." ending a sentence keeps the sentence's full stop
            spoken += "."
    return spoken


_NUMBER_RULES: list[tuple[re.Pattern[str], object]] = [
    (re.compile(r"(?P<sym>[$€£])\s?(?P<major>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<minor>\d{2}))?\b"), _money),
    (re.compile(r"\b(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)(?:\s?(?P<ampm>[ap]\.?m\.?))?(?![\w:])", re.I), _time),
    # Phone numbers and account numbers are read digit by digit, as people read them.
    (re.compile(r"\+?\d[\d-]*-\d[\d-]*\d|\b\d{5,}\b"), lambda m: spell_digits(m[0])),
    (re.compile(r"\b(\d+(?:\.\d+)?)\s?%"), lambda m: f"{words(float(m[1]) if '.' in m[1] else int(m[1]))} percent"),
    (re.compile(r"\b(\d+)(?:st|nd|rd|th)\b", re.I), lambda m: words(int(m[1]), "ordinal")),
    (re.compile(r"\b\d{1,3}(?:,\d{3})+(?:\.\d+)?\b|\b\d+\.\d+\b|\b\d+\b"),
     lambda m: words(float(m[0].replace(",", ""))) if "." in m[0] else words(int(m[0].replace(",", "")))),
]

def verbalize(text: str) -> str:
    """Numbers, amounts, times and ordinals written out as words."""
    for pattern, repl in _NUMBER_RULES:
        text = pattern.sub(repl, text)
    return re.sub(r"\s+", " ", text).strip()


def is_ssml(text: str) -> bool:
    return bool(re.match(r"\s*<speak[\s>]", text)) or bool(re.search(r"<(break|say-as|prosody)\b", text))


def plain_segments(text: str) -> list[Segment]:
    spoken = verbalize(spoken_text(text))
    return [Say(spoken)] if any(c.isalnum() for c in spoken) else []


def ssml_segments(ssml: str) -> list[Segment]:
    """Segments from SSML (`<break>`, `<say-as>`, `<prosody rate>`); bad markup is read as text."""
    source = ssml if re.match(r"\s*<speak[\s>]", ssml) else f"<speak>{ssml}</speak>"
    try:
        root = ET.fromstring(source)
    except ET.ParseError:
        return plain_segments(re.sub(r"<[^>]*>", " ", ssml))
    out: list[Segment] = []
    _walk(root, 1.0, out)
    return _merge(out)


def segments(text: str) -> list[Segment]:
    """What to say for a bot's text, in order; empty when there is nothing to say."""
    return ssml_segments(text) if is_ssml(text) else plain_segments(text)


def _walk(node: ET.Element, rate: float, out: list[Segment]) -> None:
    tag = node.tag.split("}")[-1]
    if tag == "break":
        out.append(Pause(_break_seconds(node)))
    elif tag == "say-as":
        out.append(Say(_say_as(node.get("interpret-as", ""), "".join(node.itertext())), rate))
    else:
        if tag == "prosody":
            rate = rate * _rate_factor(node.get("rate", "medium"))
        out.append(Say(verbalize(node.text or ""), rate))
        for child in node:
            _walk(child, rate, out)
            out.append(Say(verbalize(child.tail or ""), rate))


def _break_seconds(node: ET.Element) -> float:
    raw = node.get("time", "").strip().lower()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(ms|s)", raw)
    if match:
        seconds = float(match[1]) / (1000 if match[2] == "ms" else 1)
    else:
        seconds = _BREAK_STRENGTH.get(node.get("strength", "medium"), 0.4)
    return min(seconds, MAX_PAUSE_S)


def _rate_factor(raw: str) -> float:
    raw = raw.strip().lower()
    if raw in _RATE_WORDS:
        return _RATE_WORDS[raw]
    match = re.fullmatch(r"([+-]?\d+(?:\.\d+)?)%", raw)
    if not match:
        return 1.0
    value = float(match[1])
    factor = 1 + value / 100 if raw[0] in "+-" else value / 100
    return min(max(factor, 0.3), 3.0)


def _say_as(kind: str, text: str) -> str:
    text = text.strip()
    if kind in ("digits", "telephone"):
        return spell_digits(text)
    if kind in ("characters", "spell-out"):
        return " ".join(_DIGIT_WORDS[int(c)] if c.isdigit() else c.upper() for c in text if not c.isspace())
    digits = re.sub(r"[^\d]", "", text)
    if kind in ("cardinal", "number") and digits:
        return words(int(digits))
    if kind == "ordinal" and digits:
        return words(int(digits), "ordinal")
    return verbalize(text)


def _merge(items: list[Segment]) -> list[Segment]:
    merged: list[Segment] = []
    for item in items:
        if isinstance(item, Say) and not item.text.strip():
            continue
        last = merged[-1] if merged else None
        if isinstance(item, Say) and isinstance(last, Say) and last.rate_factor == item.rate_factor:
            merged[-1] = Say(f"{last.text} {item.text}".strip(), item.rate_factor)
        elif isinstance(item, Pause) and isinstance(last, Pause):
            merged[-1] = Pause(min(last.seconds + item.seconds, MAX_PAUSE_S))
        else:
            merged.append(Say(item.text.strip(), item.rate_factor) if isinstance(item, Say) else item)
    return merged
