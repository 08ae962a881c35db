"""Collecting keypad digits as the bot asked: a fixed count, a range, a finish key, an inter-digit timeout."""

from __future__ import annotations

from dataclasses import dataclass

from adapter.calls.keypad import DigitSpec

DEFAULT_FINISH_KEY = "#"


@dataclass(frozen=True, slots=True)
class Digits:
    """A finished entry: `digits` without the finish key, `keys` as pressed."""

    digits: str
    keys: str
    complete: bool  # False: ended by the timeout before the minimum count


class DigitCollector:
    """Feeds keys one by one; says when the entry is finished.

    With no spec (the bot did not ask for digits) a single key is an entry: it is how a caller picks
    from a spoken menu. The finish key ends the entry and is not part of the digits.
    """

    def __init__(self, spec: DigitSpec | None) -> None:
        self.spec = spec
        self.keys = ""

    @property
    def finish_key(self) -> str | None:
        if self.spec is None:
            return None
        return self.spec.finish_on_key if self.spec.finish_on_key is not None else DEFAULT_FINISH_KEY

    @property
    def _max(self) -> int | None:
        if self.spec is None:
            return 1
        return self.spec.num or self.spec.max

    @property
    def _min(self) -> int:
        if self.spec is None:
            return 1
        return self.spec.num or self.spec.min or 1

    @property
    def started(self) -> bool:
        return bool(self.keys)

    def press(self, key: str) -> Digits | None:
        """One key; returns the entry when this key finishes it."""
        self.keys += key
        digits = self.digits
        if self.finish_key and key == self.finish_key:
            return Digits(digits, self.keys, complete=len(digits) >= self._min)
        if self._max is not None and len(digits) >= self._max:
            return Digits(digits, self.keys, complete=True)
        return None

    def timeout(self) -> Digits:
        """The inter-digit timeout ran out: what was typed so far."""
        digits = self.digits
        return Digits(digits, self.keys, complete=len(digits) >= self._min)

    @property
    def digits(self) -> str:
        keys = self.keys
        if self.finish_key and keys.endswith(self.finish_key):
            keys = keys[:-1]
        return keys
