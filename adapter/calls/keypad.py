"""What the caller may type: the keypad's keys and how many of them the bot asked for."""

from __future__ import annotations

from dataclasses import dataclass

DTMF_KEYS = "0123456789*#"
MAX_DIGITS = 64


@dataclass(frozen=True, slots=True)
class DigitSpec:
    """How many keys to collect: exactly `num`, or between `min` and `max`, ended early by `finish_on_key`."""

    num: int | None = None
    min: int | None = None
    max: int | None = None
    finish_on_key: str | None = None


@dataclass(frozen=True, slots=True)
class ExpectedInput:
    """What the bot asked the caller for; `digits is None` means keys are not being collected."""

    speech: bool = True
    digits: DigitSpec | None = None
