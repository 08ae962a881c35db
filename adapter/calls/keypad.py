"""What the caller may type: the keypad's keys, how many of them the bot asked for, and when an entry
is over. The rules live here once, for the conversation that collects keys and for doors that let the
phone system collect them (Twilio's `<Gather>`)."""

from __future__ import annotations

from dataclasses import dataclass

DTMF_KEYS = "0123456789*#"
MAX_DIGITS = 64
DEFAULT_FINISH_KEY = "#"


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


@dataclass(frozen=True, slots=True)
class Digits:
    """A finished entry: `digits` without the finish key, `keys` as pressed."""

    digits: str
    keys: str
    complete: bool  # False: ended early (finish key, timeout) below the minimum count


def finish_key(spec: DigitSpec) -> str:
    """The key that ends an entry early: the bot's, else `#`; "" when the bot asked for none."""
    return spec.finish_on_key if spec.finish_on_key is not None else DEFAULT_FINISH_KEY


def most_digits(spec: DigitSpec) -> int | None:
    """The count that ends an entry by itself; None: only the finish key or the timeout end it."""
    return spec.num or spec.max


def least_digits(spec: DigitSpec) -> int:
    return spec.num or spec.min or 1


def digits_of(spec: DigitSpec, keys: str) -> str:
    """The entry's digits: the keys without a closing finish key."""
    finish = finish_key(spec)
    return keys[:-1] if finish and keys.endswith(finish) else keys


def entry_ended_by(spec: DigitSpec, keys: str) -> Digits | None:
    """The entry when the last of `keys` finishes it (the finish key, or the most digits), else None."""
    digits = digits_of(spec, keys)
    finish, most = finish_key(spec), most_digits(spec)
    if finish and keys.endswith(finish):
        return Digits(digits, keys, complete=len(digits) >= least_digits(spec))
    if most is not None and len(digits) >= most:
        return Digits(digits, keys, complete=True)
    return None


def entry_cut_short(spec: DigitSpec, keys: str) -> Digits:
    """The entry when no more keys come (the inter-digit timeout, or a door's whole entry): as typed."""
    digits = digits_of(spec, keys)
    return Digits(digits, keys, complete=len(digits) >= least_digits(spec))
