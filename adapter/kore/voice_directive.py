"""The custom `voice` payload a bot sends to control the call (documented in adapter/kore/README.md).

Kore's webhook replies have no hang-up, transfer or digit-collection fields (specs §7, §8.2), so a bot
sends, from a Webhook-channel message, JSON such as
`{"text": "Goodbye", "voice": {"action": "hangup"}}`,
`{"voice": {"action": "transfer", "to": "sip:agent@example.com"}}` or
`{"text": "Enter your PIN", "voice": {"input": {"speech": false, "digits": {"num": 4}}}}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapter.calls.keypad import DTMF_KEYS, MAX_DIGITS, DigitSpec, ExpectedInput
from adapter.calls.replies import CallAction


def read_directive(voice: Mapping[str, Any]) -> tuple[CallAction | None, ExpectedInput | None]:
    """The call action and expected input in a `voice` object.

    Raises:
        ValueError: the object breaks the documented shape (one line saying how).
    """
    unknown = set(voice) - {"action", "to", "input"}
    if unknown:
        raise ValueError(f"unknown voice keys: {', '.join(sorted(unknown))}")
    action = _action(voice)
    expect = _expect(voice["input"]) if "input" in voice else None
    return action, expect


def _action(voice: Mapping[str, Any]) -> CallAction | None:
    kind = voice.get("action")
    if kind is None:
        return None
    if kind == "hangup":
        return CallAction("hangup")
    if kind == "transfer":
        to = voice.get("to")
        if not isinstance(to, str) or not to.strip():
            raise ValueError('voice action "transfer" needs a "to" string')
        return CallAction("transfer", to.strip())
    raise ValueError(f'voice action must be "hangup" or "transfer", not {kind!r}')


def _expect(spec: Any) -> ExpectedInput:
    if not isinstance(spec, Mapping):
        raise ValueError("voice input must be an object")
    speech = spec.get("speech", True)
    if not isinstance(speech, bool):
        raise ValueError("voice input speech must be true or false")
    digits = _digits(spec["digits"]) if spec.get("digits") is not None else None
    if not speech and digits is None:
        raise ValueError("voice input accepts neither speech nor digits")
    return ExpectedInput(speech, digits)


def _digits(spec: Any) -> DigitSpec:
    if spec is True:
        return DigitSpec()
    if not isinstance(spec, Mapping):
        raise ValueError("voice input digits must be an object or true")
    counts = {k: spec.get(k) for k in ("num", "min", "max")}
    for key, value in counts.items():
        if value is not None and (type(value) is not int or not 1 <= value <= MAX_DIGITS):
            raise ValueError(f"voice input digits {key} must be a whole number from 1 to {MAX_DIGITS}")
    if counts["num"] is not None and (counts["min"] is not None or counts["max"] is not None):
        raise ValueError("voice input digits: give num, or min/max, not both")
    if counts["min"] is not None and counts["max"] is not None and counts["min"] > counts["max"]:
        raise ValueError("voice input digits min is above max")
    finish = spec.get("finishOnKey")
    if finish is not None and (not isinstance(finish, str) or len(finish) != 1 or finish not in DTMF_KEYS):
        raise ValueError("voice input digits finishOnKey must be one key of 0-9, * or #")
    return DigitSpec(counts["num"], counts["min"], counts["max"], finish)
