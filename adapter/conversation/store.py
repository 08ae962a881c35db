"""A call's durable state behind get/put, so it is not tied to one object graph (memory now, Redis later)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from adapter.calls.info import CallInfo
from adapter.calls.keypad import ExpectedInput
from adapter.calls.phase import Phase
from adapter.calls.replies import Menu


@dataclass(slots=True)
class CallState:
    call: CallInfo
    phase: Phase = Phase.STARTING
    menu: Menu | None = None
    expect: ExpectedInput | None = None
    last_prompt: str = ""
    no_input: int = 0
    no_match: int = 0
    turns: int = 0
    closed_reason: str = ""


class SessionStore(Protocol):
    async def get(self, call_id: str) -> CallState | None: ...

    async def put(self, call_id: str, state: CallState) -> None: ...

    async def delete(self, call_id: str) -> None: ...

    async def release(self, call_id: str) -> bool:
        """The call ends here: delete its state, unless another instance has taken the call over or ended
        it already. Whether it was this instance's to end (then it closes the bot's session, once)."""
        ...


class MemoryStore:
    """One process's calls."""

    def __init__(self) -> None:
        self._states: dict[str, CallState] = {}

    async def get(self, call_id: str) -> CallState | None:
        return self._states.get(call_id)

    async def put(self, call_id: str, state: CallState) -> None:
        self._states[call_id] = state

    async def delete(self, call_id: str) -> None:
        self._states.pop(call_id, None)

    async def release(self, call_id: str) -> bool:
        """One box: its calls are always its own."""
        await self.delete(call_id)
        return True

    def __len__(self) -> int:
        return len(self._states)
