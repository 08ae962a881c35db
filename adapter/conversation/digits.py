"""Collecting keypad digits as the bot asked, one key at a time (the rules are adapter.calls.keypad's)."""

from __future__ import annotations

from adapter.calls.keypad import Digits, DigitSpec, entry_cut_short, entry_ended_by


class DigitCollector:
    """Feeds keys one by one; says when the entry is finished. The finish key ends the entry and is
    not part of the digits; a menu's spec (`num=1`) makes a single key an entry."""

    def __init__(self, spec: DigitSpec) -> None:
        self.spec = spec
        self.keys = ""

    @property
    def started(self) -> bool:
        return bool(self.keys)

    def press(self, key: str) -> Digits | None:
        """One key; returns the entry when this key finishes it."""
        self.keys += key
        return entry_ended_by(self.spec, self.keys)

    def timeout(self) -> Digits:
        """The inter-digit timeout ran out: what was typed so far."""
        return entry_cut_short(self.spec, self.keys)
