"""Shared state in the app: with KORE_VOICE_REDIS_URL, the Redis store, the lease, the callback relay,
cluster-wide stream tokens, the client the doors' own shared records use (`SHARED_REDIS`: Twilio's
after-stream TwiML) and the health that readiness and new calls look at; without it, nothing.

`add_cluster(app, token_issuers)` runs in `create_app` after the doors' routes (their stream tokens get
the shared record of spent ones); its cleanup context comes after the bot's, as the reaper closes dead calls through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web
from redis.exceptions import RedisError

from adapter.app_state import CLOCK, METRICS, SERVICE, SERVICES
from adapter.calls.info import CallInfo
from adapter.cluster.bus import Bus
from adapter.cluster.leases import Lease, new_instance_id
from adapter.cluster.link import SHARED_REDIS, RedisLink
from adapter.cluster.spent_tokens import RedisSpent, SpentTokens
from adapter.conversation.store import MemoryStore, RedisStore, SessionStore
from adapter.kore.callbacks import RELAY, REPLY_ROUTER, RelayUnavailable, ReplyRouter

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Cluster:
    """This instance's part of the cluster."""

    instance: str
    link: RedisLink
    store: RedisStore
    bus: Bus


CLUSTER = web.AppKey("cluster", Cluster)
STORE = web.AppKey("session_store", SessionStore)


class TokenIssuer(Protocol):
    """A door's stream tokens (adapter/doors/twilio/stream_token.py), whose record of spent ones is swappable."""

    spent: SpentTokens


class BusRelay:
    """Callbacks for a call another instance runs go to that instance's bus."""

    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster

    async def forward(self, user_id: str, body: bytes) -> bool:
        try:
            stored = await self._cluster.store.stored(user_id)
            if stored is None or stored.owner == self._cluster.instance:
                return False
            await self._cluster.bus.send(stored.owner, body)
        except RedisError as exc:
            log.warning("call %s: callback not relayed: Redis: %s", user_id, exc)
            raise RelayUnavailable(f"the shared state (Redis at {self._cluster.link.where}) is unreachable: "
                                   "which instance runs the call is unknown; send it again later") from None
        return True


def add_cluster(app: web.Application, token_issuers: Iterable[TokenIssuer]) -> None:
    """The store every conversation writes to, and with Redis the rest of the shared state: the doors'
    `token_issuers` then spend their tokens once across the cluster."""
    service = app[SERVICE]
    if service.redis_url is None:
        app[STORE] = MemoryStore()
        return
    link = RedisLink(service.redis_url.reveal(), app[METRICS].registry)
    instance = new_instance_id()
    cluster = Cluster(instance, link, RedisStore(link.redis, instance, service.session_ttl_s),
                      Bus(link.redis, instance, app[CLOCK]))
    app[CLUSTER] = cluster
    app[STORE] = cluster.store
    app[SHARED_REDIS] = link.redis
    for issuer in token_issuers:
        issuer.spent = RedisSpent(link.redis, app[CLOCK])
    if REPLY_ROUTER in app:
        app[RELAY] = BusRelay(cluster)
    app.cleanup_ctx.append(_running)


def relayed(router: ReplyRouter, body: bytes) -> None:
    """A callback another instance received for one of our calls: as if it had come here."""
    try:
        router.receive(json.loads(body))
    except LookupError as exc:
        log.info("a relayed bot callback found no call: %s", exc)


async def _running(app: web.Application) -> AsyncIterator[None]:
    """The lease (renewed, reaping dead instances) and the bus, from start-up to the end of shutdown."""
    cluster = app[CLUSTER]
    bot = app[SERVICES].bot

    async def end_session(call: CallInfo) -> None:
        adopt = getattr(bot, "adopt", None)  # the Kore client closes only sessions it holds
        if adopt is not None:
            adopt(call)
        await bot.end_call(call)

    lease = Lease(cluster.link.redis, cluster.store, app[CLOCK], app[SERVICE].lease_s, end_session)
    await cluster.link.check()  # health known before the first call comes
    tasks = [asyncio.create_task(lease.run(), name=f"lease {cluster.instance}")]
    if REPLY_ROUTER in app:
        router = app[REPLY_ROUTER]
        tasks.append(asyncio.create_task(cluster.bus.receive(lambda body: relayed(router, body)),
                                         name=f"bus {cluster.instance}"))
    log.info("instance %s on Redis at %s", cluster.instance, cluster.link.where)
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await lease.release()
        await cluster.bus.close()
        await cluster.link.close()


async def shared_state_check(app: web.Application) -> dict[str, dict[str, object]]:
    """Readiness' entry for the shared state: none without Redis; else whether Redis answers now."""
    cluster = app.get(CLUSTER)
    if cluster is None:
        return {}
    problem = await cluster.link.check()
    detail = f"Redis at {cluster.link.where} ({cluster.instance})" + (f": {problem}" if problem else "")
    return {"shared_state": {"ok": problem is None, "detail": detail}}


def shared_state_problem(app: web.Application) -> str | None:
    """Why new calls cannot be taken for want of the shared state (as the latest Redis command found)."""
    cluster = app.get(CLUSTER)
    if cluster is None or cluster.link.problem is None:
        return None
    return f"the shared state (Redis at {cluster.link.where}) is unreachable: {cluster.link.problem}"
