"""`kore-voice serve`: run the service until Ctrl-C or SIGTERM, logging one JSON line per event.

Stopping drains (a rolling restart behind a balancer loses no call): the first SIGTERM or SIGINT fails
readiness and refuses new calls (503) while live calls go on for up to KORE_VOICE_DRAIN_S; then each is
closed properly (the bot's `SESSION_CLOSURE`, the door's hang-up) and the process exits 0. A second signal
cuts the drain short: the calls are closed at once.

Its defences against clients that hold connections (the app's own are in adapter/server.py): at most
KORE_VOICE_MAX_CONNECTIONS open at once (the excess gets one 503 line and is closed), the open-file
limit raised to fit them, and accept() failing for lack of file descriptors said once a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import resource
import signal
import socket
import sys
import time
from typing import Any

from aiohttp import web

from adapter import json_log
from adapter.api_errors import CODES, error_response
from adapter.app_state import CALLS, CLOCK, METRICS
from adapter.call_registry import CallRegistry
from adapter.calls.clock import Clock
from adapter.config import Settings
from adapter.doors.sip.listener import USER_AGENT
from adapter.doors.sip.uas import host as sip_host
from adapter.metrics import Metrics
from adapter.server import create_app, local_url, runner_options
from adapter.service_settings import LOG_LEVELS

log = logging.getLogger(__name__)

#: file descriptors the service needs besides its connections (models, worker pipes, the bot, logs)
FD_RESERVE = 128
ACCEPT_ERROR_INTERVAL_S = 60.0
REFUSAL_LINGER_S = 1.0  # how long a refused client has to finish sending before it is closed
# asyncio's context message when accept() fails with EMFILE, ENFILE, ENOBUFS or ENOMEM.
ACCEPT_OUT_OF_RESOURCES = "socket.accept() out of system resource"
_REFUSAL_BODY = b'{"error": {"code": "unavailable", "message": "too many open connections; retry"}}\n'
REFUSAL = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
           b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(_REFUSAL_BODY), _REFUSAL_BODY))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the voice service: REST door, health, readiness and metrics",
                       description="Prints one line with the URL once it is ready (port 0: any free port).")
    p.add_argument("--host", help="address to listen on (default KORE_VOICE_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default KORE_VOICE_PORT or 8080; 0: any free port)")
    p.add_argument("--audiosocket-port", type=int,
                   help="Asterisk AudioSocket TCP port (default KORE_VOICE_AUDIOSOCKET_PORT; unset: no listener)")
    p.add_argument("--sip-port", type=int,
                   help="start the SIP door on this UDP+TCP port (default KORE_VOICE_SIP_PORT; 0: any free port)")
    p.add_argument("--log-level", choices=LOG_LEVELS, help="default KORE_VOICE_LOG_LEVEL or info")
    p.set_defaults(run=run)


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before the app starts so port 0 is known to it (async callbacks)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family)


def run(args: argparse.Namespace) -> int:
    settings = Settings.load(args.config)
    if args.audiosocket_port is not None:
        audiosocket = dataclasses.replace(settings.audiosocket, port=args.audiosocket_port)
        settings = dataclasses.replace(settings, audiosocket=audiosocket)
    if args.sip_port is not None:
        settings = dataclasses.replace(settings, sip=dataclasses.replace(settings.sip, port=args.sip_port))
    host = args.host if args.host is not None else settings.service.host
    port = args.port if args.port is not None else settings.service.port
    try:
        sock = listen(host, port)
    except OSError as exc:
        print(f"kore-voice: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    service = dataclasses.replace(settings.service, host=host, port=sock.getsockname()[1])
    json_log.configure(args.log_level or settings.service.log_level)
    asyncio.run(_serve(dataclasses.replace(settings, service=service), sock))
    return 0


class Refusal(asyncio.Protocol):
    """A connection over the cap: one 503 line and our end shut at once; the request is read and
    dropped (closing on unread bytes would reset the connection before the client reads the 503)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(REFUSAL)
        transport.write_eof()
        asyncio.get_running_loop().call_later(REFUSAL_LINGER_S, transport.close)

    def data_received(self, data: bytes) -> None:
        pass


class JsonErrorsHandler(web.RequestHandler):
    """aiohttp's connection handler, whose own answers to requests it cannot parse (a control character
    in a header, a bad request line) are one JSON line like every other error, not a plain-text dump."""

    def handle_error(self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        super().handle_error(request, status, exc, message)  # logs it; refuses when an answer has begun
        reason = (getattr(exc, "message", None) or message or "").strip().split("\n")[0].rstrip(":")
        response = error_response(status, CODES.get(status, "error"),
                                  json_log.redact(f"malformed request: {reason}" if status < 500 else "internal error"))
        response.force_close()
        return response


class CappedSite(web.SockSite):
    """aiohttp's site on our socket, refusing connections beyond `max_connections` open at once, and
    serving the rest with JsonErrorsHandler."""

    def __init__(self, runner: web.AppRunner, sock: socket.socket, settings: Settings, metrics: Metrics) -> None:
        super().__init__(runner, sock)
        self._settings = settings
        self._metrics = metrics

    async def start(self) -> None:
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None

        loop = asyncio.get_running_loop()
        options = runner_options(self._settings)  # what the runner gave its Server, for each handler

        def protocol() -> asyncio.Protocol:
            if len(server.connections) < self._settings.service.max_connections:
                return JsonErrorsHandler(server, loop=loop, **options)
            self._metrics.connections_refused.inc()
            return Refusal()

        self._server = await loop.create_server(protocol, sock=self._sock, backlog=self._backlog)


class AcceptErrors:
    """The loop's exception handler: accept() failing for lack of file descriptors or memory is one
    line per ACCEPT_ERROR_INTERVAL_S with a count (asyncio retries every second, each with a traceback);
    anything else is handled as asyncio would."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._failures = 0
        self._said_at = -ACCEPT_ERROR_INTERVAL_S

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") != ACCEPT_OUT_OF_RESOURCES:
            loop.default_exception_handler(context)
            return
        self._failures += 1
        self._metrics.accept_failures.inc()
        now = time.monotonic()
        if now - self._said_at >= ACCEPT_ERROR_INTERVAL_S:
            exc = context.get("exception")
            reason = getattr(exc, "strerror", None) or str(exc)
            log.error("cannot accept connections: %s (%d failed attempts); new clients wait. Raise the open-file "
                      "limit (ulimit -n) or lower KORE_VOICE_MAX_CONNECTIONS", reason, self._failures,
                      extra={"failures": self._failures})
            self._failures, self._said_at = 0, now


def fit_open_files(max_connections: int) -> None:
    """Raise the soft open-file limit so the connections allowed fit in it (up to the hard limit);
    say so when they cannot."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = max_connections + FD_RESERVE
    if soft != resource.RLIM_INFINITY and soft < need:
        soft = need if hard == resource.RLIM_INFINITY else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    if soft != resource.RLIM_INFINITY and soft < need:
        log.warning("the open-file limit (%d) is below KORE_VOICE_MAX_CONNECTIONS + %d; accept() may fail "
                    "under load", soft, FD_RESERVE)


class StopSignals:
    """SIGINT and SIGTERM, counted: the first starts the drain, the second ends it."""

    def __init__(self) -> None:
        self.first, self.second = asyncio.Event(), asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._received, sig)

    def _received(self, sig: signal.Signals) -> None:
        if self.first.is_set():
            log.info("%s again: closing the live calls now", sig.name)
            self.second.set()
        else:
            log.info("%s: stopping", sig.name)
            self.first.set()


async def drain(calls: CallRegistry, clock: Clock, drain_s: float, cut_short: asyncio.Event) -> None:
    """Refuse new calls (readiness fails with them) and let the live ones go on until they have all ended,
    `drain_s` has passed on `clock` or `cut_short` is set, whichever comes first."""
    calls.drain()
    if not len(calls):
        return
    log.info("draining: new calls are refused; %d live calls may go on for up to %g s", len(calls), drain_s,
             extra={"live_calls": len(calls), "drain_s": drain_s})
    waits = [asyncio.create_task(wait) for wait in (calls.ended(), cut_short.wait(), clock.sleep(drain_s))]
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for wait in waits:
        wait.cancel()
    if len(calls):
        log.info("the drain is over with %d calls still live: closing them", len(calls))


async def _serve(settings: Settings, sock: socket.socket) -> None:
    app = create_app(settings)
    asyncio.get_running_loop().set_exception_handler(AcceptErrors(app[METRICS]))
    fit_open_files(settings.service.max_connections)
    runner = web.AppRunner(app, **runner_options(settings))
    await runner.setup()
    try:
        await CappedSite(runner, sock, settings, app[METRICS]).start()
        kore = settings.kore
        bot = ("the embedded demo bot (no KORE_WEBHOOK_URL)" if kore.webhook is None
               else f"the Kore.ai bot at {kore.webhook.base}")
        url = local_url(*sock.getsockname()[:2])
        sip = app.get(USER_AGENT)
        doors = "" if sip is None else f"; SIP door on udp+tcp {sip_host(sip.address[0])}:{sip.address[1]}"
        print(f"kore-voice: serving on {url} with {bot}; browser console: {url}/console{doors}", flush=True)
        signals = StopSignals()
        await signals.first.wait()
        await drain(app[CALLS], app[CLOCK], settings.service.drain_s, signals.second)
    finally:
        await runner.cleanup()
