"""The simulator's bot: runs a `Script` per user (intent, step, slots) and says what a turn produced."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from adapter.kore.simulator.script import Ask, Fail, Intent, Message, Script, Step, Wait


@dataclass(frozen=True, slots=True)
class Batch:
    """Messages that become ready together, `delay_s` after the previous batch."""

    delay_s: float
    messages: tuple[str | dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class Turn:
    """What the bot did with one request: batches of messages, or a failure status."""

    batches: tuple[Batch, ...] = ()
    fail_status: int | None = None
    completed_task: str | None = None  # set when an intent ran to its end (endOfTask)


@dataclass
class _Dialog:
    intent: Intent | None = None
    next_step: int = 0  # index into the running steps; at an Ask while waiting for its answer
    slots: dict[str, str] = field(default_factory=dict)


class SlotValue(str):
    """A filled slot; `{account:digits}` reads it out digit by digit ("1 2 3 4")."""

    def __format__(self, spec: str) -> str:
        return " ".join(self) if spec == "digits" else format(str(self), spec)


class _Slots(dict[str, SlotValue]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


class BotEngine:
    """Holds every simulated user's dialog; failures leave a dialog as it was before the turn."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self._dialogs: dict[str, _Dialog] = {}
        self._failures: dict[str, dict[int, int]] = {}  # user -> id of a Fail step -> times failed

    def connect(self, user: str) -> Turn:
        """ON_CONNECT (or a v1 new session): a fresh dialog and the welcome steps."""
        dialog = _Dialog()
        turn = self._run(user, dialog, self.script.welcome, None)
        if turn.fail_status is None:
            self._dialogs[user] = dialog
        return turn

    def close(self, user: str) -> bool:
        """SESSION_CLOSURE; True if the user had a session."""
        self._failures.pop(user, None)
        return self._dialogs.pop(user, None) is not None

    def hear(self, user: str, text: str) -> Turn:
        """One caller input, as text."""
        current = self._dialogs.get(user) or _Dialog()
        dialog = dataclasses.replace(current, slots=dict(current.slots))
        waiting = _waiting_ask(dialog)
        intent = self.script.intent_for(text)
        if waiting is not None and intent in (None, waiting[0]):
            running, asked = waiting
            value = re.sub(r"[\s#]", "", text) if asked.digits else text.strip()
            if asked.pattern is not None and not asked.pattern.fullmatch(value):
                return Turn((Batch(0.0, (self._fill(asked.retry, dialog),)),))
            dialog.slots[asked.slot] = value
            dialog.next_step += 1
            turn = self._run(user, dialog, running.steps, running)
        elif intent is not None:
            dialog = _Dialog(intent=intent)
            turn = self._run(user, dialog, intent.steps, intent)
        else:
            turn = self._run(user, _Dialog(), self.script.fallback, None)
            dialog = current
        if turn.fail_status is None:
            self._dialogs[user] = dialog
        return turn

    def _run(self, user: str, dialog: _Dialog, steps: tuple[Step, ...], intent: Intent | None) -> Turn:
        batches: list[Batch] = []
        delay, messages = 0.0, list[str | dict[str, Any]]()
        while dialog.next_step < len(steps):
            step = steps[dialog.next_step]
            if isinstance(step, Fail) and self._should_fail(user, step):
                return Turn(fail_status=step.status)
            if isinstance(step, Wait):
                batches.append(Batch(delay, tuple(messages)))
                delay, messages = step.seconds, []
            elif isinstance(step, Message):
                messages.append(self._fill(step.val, dialog))
            elif isinstance(step, Ask):
                messages.append(self._fill(step.prompt, dialog))
                batches.append(Batch(delay, tuple(messages)))
                return Turn(tuple(b for b in batches if b.messages or b.delay_s))
            dialog.next_step += 1
        batches.append(Batch(delay, tuple(messages)))
        dialog.intent, dialog.next_step = None, 0
        kept = tuple(b for b in batches if b.messages or b.delay_s)
        return Turn(kept, completed_task=intent.name if intent else None)

    def _should_fail(self, user: str, step: Fail) -> bool:
        failures = self._failures.setdefault(user, {})
        failed = failures.get(id(step), 0)
        if step.times is not None and failed >= step.times:
            return False
        failures[id(step)] = failed + 1
        return True

    @staticmethod
    def _fill(val: str | dict[str, Any], dialog: _Dialog) -> str | dict[str, Any]:
        slots = _Slots({k: SlotValue(v) for k, v in dialog.slots.items()})
        if isinstance(val, str):
            return val.format_map(slots)
        if isinstance(val.get("text"), str):
            return {**val, "text": val["text"].format_map(slots)}
        return val


def _waiting_ask(dialog: _Dialog) -> tuple[Intent, Ask] | None:
    """The running intent and the question it is waiting on, if any."""
    if dialog.intent is None or dialog.next_step >= len(dialog.intent.steps):
        return None
    step = dialog.intent.steps[dialog.next_step]
    return (dialog.intent, step) if isinstance(step, Ask) else None
