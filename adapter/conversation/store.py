"""A call's durable state behind get/put, so it is not tied to one object graph: in this process's memory
(`MemoryStore`, one box), or in Redis shared by every instance (`RedisStore`, KORE_VOICE_REDIS_URL)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError

from adapter.calls.info import CallInfo
from adapter.calls.keypad import ExpectedInput
from adapter.calls.phase import Phase
from adapter.calls.replies import Menu

log = logging.getLogger(__name__)


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

    async def put(self, call_id: str, state: CallState) -> bool:
        """Write the state. False: the call has ended on another instance meanwhile (nothing written)."""
        ...

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

    async def put(self, call_id: str, state: CallState) -> bool:
        self._states[call_id] = state
        return True

    async def delete(self, call_id: str) -> None:
        self._states.pop(call_id, None)

    async def release(self, call_id: str) -> bool:
        """One box: its calls are always its own."""
        await self.delete(call_id)
        return True

    def __len__(self) -> int:
        return len(self._states)


class Stored(msgspec.Struct, frozen=True):
    """What Redis holds per call: its state, and which instance runs its conversation."""

    owner: str
    state: CallState


_decoder = msgspec.json.Decoder(Stored)


def state_key(call_id: str) -> str:
    return f"kv:call:{call_id}"


def ended_key(call_id: str) -> str:
    """A call ended (no state left, only its end): a copy of it elsewhere must not end it again."""
    return f"kv:ended:{call_id}"


#: how long an ended call's mark stays (an instance holding a stale copy of it learns of the end within it)
ENDED_KEEP_S = 3600.0

# release: ended already, or another owner -> 0; else delete the state, mark the end -> 1 (atomic in Redis)
_RELEASE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local raw = redis.call('GET', KEYS[1])
if raw and cjson.decode(raw)['owner'] ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
redis.call('SREM', KEYS[3], ARGV[3])
return 1
"""


# put: refused (0) once the call is marked ended; else the state written (its TTL renewed) and the call
# listed as the writer's -> 1 (atomic in Redis, so an end on another instance comes before or after it whole)
_PUT = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[3], ARGV[3])
return 1
"""


def owned_key(instance: str) -> str:
    """The set of the calls an instance runs: what a survivor closes when that instance dies."""
    return f"kv:owned:{instance}"


class RedisStore:
    """Every instance's calls in Redis: a call's state is JSON under `kv:call:{id}`, written when it
    changes and expiring `ttl_s` after its last write (a call nobody ends cannot stay for ever); the
    instance running the call (`owner`) lists it under `kv:owned:{owner}`.

    A live call must outlast a Redis outage, so `put` and `delete` log a failure instead of raising:
    the next change writes the whole state again. `get` raises `RedisError`: the caller needs the answer.
    """

    def __init__(self, redis: Redis, owner: str, ttl_s: float) -> None:
        self._redis = redis
        self.owner = owner
        self.ttl_s = ttl_s
        self._ttl_ms = round(ttl_s * 1000)
        self.unreleased: set[str] = set()  # ended here while Redis was unreachable: the lease releases them later

    async def get(self, call_id: str) -> CallState | None:
        stored = await self.stored(call_id)
        return stored.state if stored else None

    async def stored(self, call_id: str) -> Stored | None:
        raw = await self._redis.get(state_key(call_id))
        return _decoder.decode(raw) if raw is not None else None

    async def put(self, call_id: str, state: CallState) -> bool:
        """Write the state, unless the call has ended meanwhile (its end marked by any instance): a copy
        that took the call over as its owner ended it must not bring its state back. Redis unreachable:
        not refused (logged; the next change writes it)."""
        keys = (state_key(call_id), ended_key(call_id), owned_key(self.owner))
        try:
            written = await self._redis.eval(_PUT, 3, *keys, msgspec.json.encode(Stored(self.owner, state)),
                                             self._ttl_ms, call_id)
        except RedisError as exc:
            log.warning("call %s: state not stored (Redis: %s); the next change writes it", call_id, exc)
            return True
        if not written:
            log.info("call %s: state not stored: the call has ended on another instance", call_id)
        return bool(written)

    async def delete(self, call_id: str) -> None:
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                await pipe.delete(state_key(call_id)).srem(owned_key(self.owner), call_id).execute()
        except RedisError as exc:
            log.warning("call %s: state not deleted (Redis: %s); it expires on its own", call_id, exc)

    async def release(self, call_id: str) -> bool:
        """Atomic, so two instances ending copies of one call close its session once. Redis unreachable:
        the call is taken as this instance's (no other could have taken it over meanwhile)."""
        keys = (state_key(call_id), ended_key(call_id), owned_key(self.owner))
        try:
            return bool(await self._redis.eval(_RELEASE, 3, *keys, self.owner, round(ENDED_KEEP_S * 1000), call_id))
        except RedisError as exc:
            log.warning("call %s: state not deleted (Redis: %s); deleted once Redis is back", call_id, exc)
            self.unreleased.add(call_id)
            return True

    async def ended(self, call_id: str) -> bool:
        """Whether the call has ended (on any instance) within ENDED_KEEP_S."""
        return bool(await self._redis.exists(ended_key(call_id)))
