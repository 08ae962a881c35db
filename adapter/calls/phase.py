"""Whose turn it is in a call, as one closed set of names instead of bare strings doors compare."""

from __future__ import annotations

import enum


class Phase(enum.StrEnum):
    """`starting` until the welcome is asked for, `bot` while the bot answers, `listening` while the
    caller may speak or type, `closed` once the call has ended (for good)."""

    STARTING = "starting"
    BOT = "bot"
    LISTENING = "listening"
    CLOSED = "closed"
