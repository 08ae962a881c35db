"""The aiohttp application: resources that live as long as the app, the doors, health and metrics.

`create_app(settings)` starts nothing; the app's `cleanup_ctx` loads the recogniser (once, in an
executor), starts the synthesizer, opens one HTTP client session and the bot (the embedded simulator
when KORE_WEBHOOK_URL is unset), and closes them in reverse. Shutdown hangs up every live call first.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from importlib import resources
from typing import Any

import aiohttp
from aiohttp import web

from adapter.api_errors import CODES, ApiError, error_response
from adapter.app_state import CALLS, CLOCK, CONVERSATION, LIMITS, METRICS, SERVICE, SERVICES, TTS
from adapter.audio.errors import AudioError
from adapter.call_registry import CallRegistry
from adapter.calls.clock import Clock, SystemClock
from adapter.cluster.wiring import STORE, add_cluster, shared_state_check, shared_state_problem
from adapter.config import ConfigError, Settings
from adapter.conversation.services import Services
from adapter.doors import console, kiosk_stream, rest
from adapter.doors.audiosocket import door as audiosocket
from adapter.doors.pacer import add_pacer
from adapter.doors.sip.listener import add_sip
from adapter.doors.sip.settings import SIP
from adapter.doors.twilio import media as twilio_media
from adapter.doors.twilio import voice as twilio_voice
from adapter.doors.twilio.settings import TWILIO
from adapter.doors.vonage import webhooks as vonage
from adapter.heap import add_heap_trimming
from adapter.json_log import JsonAccessLogger, call_scope, logged_path, redact
from adapter.kore.callbacks import ReplyRouter, add_callback_routes
from adapter.kore.client import KoreClient
from adapter.kore.simulator.embedded import embedded_bot
from adapter.metrics import CONTENT_TYPE, Metrics
from adapter.speech.engines import load_recognizer
from adapter.speech.process_recognizer import process_recognizer
from adapter.speech.recognizer import Recognizer
from adapter.speech.recognizer_pool import RecognizerPool, loaded_in_background
from adapter.speech.synthesizer import Synthesizer

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
HTTP = web.AppKey("http", aiohttp.ClientSession)
RECOGNIZER_POOL = web.AppKey("recognizer_pool", RecognizerPool)
RECOGNIZER = web.AppKey("recognizer", Recognizer)
SYNTHESIZER = web.AppKey("synthesizer", Synthesizer)
BOT = web.AppKey("bot", KoreClient)
BOT_URL = web.AppKey("bot_url", str)  # where readiness looks for the bot: the simulator, or Kore's host
BOT_PROBE_TIMEOUT_S = 2.0
BOT_PROBE_TTL_S = 5.0  # readiness reuses a bot probe this long
# Multipart framing around the largest upload we accept.
BODY_SLACK_BYTES = 64 * 1024
# Headers of an aiohttp HTTPException worth keeping on the JSON error (405's Allow, 413's none, ...).
KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# --- middlewares --------------------------------------------------------------------------------


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure as one status and one line of JSON; a traceback only in the log, for our bugs."""
    try:
        return await handler(request)
    except ApiError as exc:
        status, code, message, headers = exc.status, exc.code, exc.message, exc.headers
    except AudioError as exc:
        status, message, headers = exc.http_status, exc.reason, {}
        code = "too_large" if status == 413 else "unsupported_media"
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        status, code = exc.status, CODES.get(exc.status, "error")
        message = " ".join((exc.text or exc.reason).removeprefix(f"{exc.status}: ").split())
        headers = {k: v for k, v in exc.headers.items() if k in KEPT_HEADERS}
    except Exception:
        log.exception("%s %s failed", request.method, logged_path(request))
        status, code, message, headers = 500, "internal", "internal error; the service log has the details", {}
    request.app[METRICS].request_errors.labels(code).inc()
    message = redact(message)  # an error may quote a URL or a credential; neither goes back out
    if status >= 500:
        log.warning("%s %s: %d %s: %s", request.method, logged_path(request), status, code, message)
    return error_response(status, code, message, headers)


def undecodable_header(headers: Mapping[str, str]) -> str | None:
    """The name of the first header whose value is not UTF-8 (aiohttp keeps such bytes as surrogates)."""
    for name, value in headers.items():
        if not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError:
                return name
    return None


@web.middleware
async def utf8_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse headers that are not UTF-8 once, here, rather than as a 500 in whichever door encodes one."""
    name = undecodable_header(request.headers)
    if name is not None:
        raise ApiError(400, "bad_header", f"the {name[:64]} header holds bytes that are not UTF-8")
    return await handler(request)


class BodyTimeout(TimeoutError):
    """The client stopped sending its body. A TimeoutError, so aiohttp's lingering read after the
    answer gives up on it quietly and closes the connection."""


@web.middleware
async def body_deadline(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A body must arrive whole within KORE_VOICE_BODY_TIMEOUT_SECONDS of its head: a client that
    trickles one (slowloris) gets 408 and its connection closed instead of holding it for ever."""
    if not request.body_exists or request.content.is_eof():
        return await handler(request)
    timeout = request.app[SERVICE].body_timeout_s

    def expire() -> None:
        if not request.content.is_eof():
            request.content.set_exception(BodyTimeout())

    timer = request.app[CLOCK].call_later(timeout, expire)
    try:
        return await handler(request)
    except BodyTimeout:
        raise ApiError(408, "request_timeout", f"the request body did not arrive within {timeout:g} s") from None
    finally:
        timer.cancel()


def bearer_token(header: str) -> str:
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


@web.middleware
async def api_key(request: web.Request, handler: Handler) -> web.StreamResponse:
    """KORE_VOICE_API_KEY guards the /v1 doors; health, metrics, the console page (its stream is a /v1 door)
    and each door's own auth stay as they are.

    The stream door also takes `?key=KEY`: browsers cannot set headers on a WebSocket."""
    key = request.app[SERVICE].api_key
    if key is not None and request.path.startswith("/v1/"):
        given = bearer_token(request.headers.get("Authorization", ""))
        if not given and request.path == kiosk_stream.PATH:
            given = request.query.get("key", "")
        if not hmac.compare_digest(given.encode(), key.reveal().encode()):
            raise ApiError(401, "unauthorized", "missing or wrong API key; send Authorization: Bearer <key> "
                           "(or ?key=<key> on the stream door)", {"WWW-Authenticate": 'Bearer realm="kore-voice"'})
    return await handler(request)


# --- resources (cleanup_ctx) ----------------------------------------------------------------------


async def _http_session(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession() as session:
        app[HTTP] = session
        yield


def asr_processes(settings: Settings, recognizer: Recognizer) -> int:
    """Worker processes for the recogniser: KORE_VOICE_ASR_PROCESSES, else one per CPU for
    engines that hold the GIL (PocketSphinx: it would stall the event loop), and none for Vosk
    and Whisper, which release it while they decode."""
    if settings.service.asr_processes is not None:
        return settings.service.asr_processes
    return (os.cpu_count() or 2) if recognizer.holds_gil else 0


async def _recognizer_pool(app: web.Application) -> AsyncIterator[None]:
    """The recogniser, loaded once, and the pool that shares its workers fairly between the calls
    (KORE_VOICE_ASR_WORKERS decodes at once; one per worker process for an engine that holds the GIL)."""
    settings = app[SETTINGS]
    recognizer = await asyncio.to_thread(loaded_in_background, load_recognizer, settings.asr)
    workers = settings.asr.worker_count
    processes = asr_processes(settings, recognizer)
    if processes:
        recognizer = await asyncio.to_thread(loaded_in_background, process_recognizer, settings.asr, processes)
        workers = processes
    app[RECOGNIZER] = recognizer
    pool = RecognizerPool(workers, app[METRICS])
    app[RECOGNIZER_POOL] = pool
    try:
        yield
    finally:
        pool.shutdown()


async def _synthesizer(app: web.Application) -> AsyncIterator[None]:
    async with Synthesizer(app[SETTINGS].tts) as synthesizer:
        app[SYNTHESIZER] = synthesizer
        # The conversation's own phrases (re-prompts, apologies), rendered before a caller needs them.
        phrases = app[SETTINGS].conversation.phrases.all()
        formats = {rest.REST_AUDIO.out_format, twilio_voice.TWILIO_AUDIO.out_format,
                   *(f.out_format for f in kiosk_stream.STREAM_FORMATS.values())}
        prerender = asyncio.create_task(synthesizer.prerender(phrases, sorted(formats)))
        yield
        await asyncio.gather(prerender, return_exceptions=True)


def local_url(host: str, port: int) -> str:
    """`http://host:port` of a listening address; a wildcard address is reached on loopback."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def _bot(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    kore = settings.kore
    if kore.webhook is not None:
        app[BOT] = KoreClient(kore, app[HTTP], app[CLOCK])
        app[BOT_URL] = kore.webhook.base
        yield
        return
    post_url = None
    if kore.mode == "async" and kore.callback_token is not None:
        base = local_url(settings.service.host, settings.service.port)
        post_url = f"{base}/kore/callback/{kore.callback_token.reveal()}"
    async with embedded_bot(kore, app[CLOCK], post_url=post_url) as embedded:
        app[BOT] = KoreClient(embedded.settings, app[HTTP], app[CLOCK])
        app[BOT_URL] = embedded.url
        yield


async def _services(app: web.Application) -> AsyncIterator[None]:
    """Everything a conversation needs, now that it is all up."""
    app[SERVICES] = Services(app[RECOGNIZER], app[SYNTHESIZER], app[BOT], app[STORE], app[CLOCK],
                              app[RECOGNIZER_POOL])
    yield


async def _hang_up_calls(app: web.Application) -> None:
    await app[CALLS].hang_up_all("the service is stopping")


# --- health, readiness, metrics, API description -----------------------------------------------------


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _probe_bot(app: web.Application) -> str | None:
    """None when the bot's host answers HTTP at all (any status); else why not."""
    try:
        timeout = aiohttp.ClientTimeout(total=BOT_PROBE_TIMEOUT_S)
        async with app[HTTP].get(app[BOT_URL], timeout=timeout, allow_redirects=False):
            return None
    except (aiohttp.ClientError, TimeoutError) as exc:
        return " ".join(str(exc).split()) or type(exc).__name__


class BotProbe:
    """The bot's reachability, asked of its host at most once per BOT_PROBE_TTL_S however often
    readiness is polled (several probers, a dashboard), and once at a time; the TTL runs on the app's clock."""

    def __init__(self, app: web.Application) -> None:
        self._app = app
        self._last: asyncio.Task[str | None] | None = None
        self._at = 0.0

    async def problem(self) -> str | None:
        now = self._app[CLOCK].now()
        if self._last is None or (self._last.done() and now - self._at >= BOT_PROBE_TTL_S):
            self._at = now
            self._last = asyncio.create_task(_probe_bot(self._app))
        return await asyncio.shield(self._last)


BOT_PROBE = web.AppKey("bot_probe", BotProbe)


async def readyz(request: web.Request) -> web.Response:
    """Ready when the recogniser is loaded, the synthesizer has its voice and the bot answers (asked at
    most every BOT_PROBE_TTL_S), and the service is not stopping: a draining instance fails readiness first,
    so its balancer sends new calls elsewhere while its live calls finish."""
    app = request.app
    kore = app[SETTINGS].kore
    problem = await app[BOT_PROBE].problem()
    bot = "embedded simulator" if kore.embedded else "Kore.ai"
    checks = {
        "recognizer": {"ok": True, "detail": app[RECOGNIZER].name},
        "synthesizer": {"ok": bool(app[SYNTHESIZER].default_voice), "detail": app[SYNTHESIZER].default_voice},
        "bot": {"ok": problem is None, "detail": f"{bot} at {app[BOT_URL]}" + (f": {problem}" if problem else "")},
        "calls": {"ok": not app[CALLS].draining, "detail": "draining: the service is stopping; new calls are refused"
                  if app[CALLS].draining else f"taking new calls ({len(app[CALLS])} live)"},
    }
    checks.update(await shared_state_check(app))
    ready = all(check["ok"] for check in checks.values())
    return web.json_response({"ready": ready, "checks": checks}, status=200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=request.app[METRICS].exposition(), headers={"Content-Type": CONTENT_TYPE})


@functools.cache
def openapi_document() -> dict[str, object]:
    """The REST door's OpenAPI description (adapter/doors/openapi.json)."""
    return json.loads(resources.files("adapter.doors").joinpath("openapi.json").read_text())


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


# --- the app ---------------------------------------------------------------------------------------


def runner_options(settings: Settings) -> dict[str, Any]:
    """How the HTTP server around the app handles connections (AppRunner's options): JSON access lines,
    and a connection that has not sent a whole request head within KORE_VOICE_HEADER_TIMEOUT_SECONDS
    of connecting (or of its previous answer) is closed. aiohttp's keep-alive timer is that deadline:
    it starts at accept and closes a connection still waiting for its next request."""
    return {"access_log_class": JsonAccessLogger, "keepalive_timeout": settings.service.header_timeout_s}


def create_app(settings: Settings, *, clock: Clock | None = None) -> web.Application:
    """The service for `settings`; nothing starts until the app does (tests may pass a manual clock).

    Raises:
        ConfigError: async mode with the embedded bot but no fixed port to send replies to.
    """
    kore = settings.kore
    if kore.mode == "async" and kore.embedded and settings.service.port == 0:
        raise ConfigError("KORE_MODE=async with the embedded bot needs a fixed KORE_VOICE_PORT for its callbacks")
    app = web.Application(middlewares=[call_scope, json_errors, utf8_headers, body_deadline, api_key],
                          client_max_size=settings.limits.max_bytes + BODY_SLACK_BYTES)
    app[SETTINGS] = settings
    app[SIP] = settings.sip
    app[SERVICE], app[CONVERSATION], app[LIMITS], app[TTS], app[TWILIO] = (
        settings.service, settings.conversation, settings.limits, settings.tts, settings.twilio)
    app[METRICS] = Metrics()
    app[CLOCK] = clock or SystemClock()
    app[CALLS] = CallRegistry(app[METRICS], settings.service.max_calls)
    app[BOT_PROBE] = BotProbe(app)
    app.cleanup_ctx.extend([_http_session, _recognizer_pool, _synthesizer, _bot, _services])
    app.on_shutdown.append(_hang_up_calls)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi)
    add_pacer(app)
    add_heap_trimming(app)
    add_sip(app)
    rest.add_routes(app)
    kiosk_stream.add_routes(app)
    console.add_routes(app)
    twilio_voice.add_routes(app)
    twilio_media.add_routes(app)
    audiosocket.add_routes(app, settings.audiosocket)
    vonage.add_routes(app, settings.vonage)
    if kore.mode == "async" and kore.callback_token is not None:
        version = kore.webhook.version if kore.webhook else (kore.version or "v2")
        add_callback_routes(app, ReplyRouter(app[CALLS], app[CLOCK], version=version), kore.callback_token)
    add_cluster(app, [app[key] for key in (twilio_media.STREAM_TOKENS, vonage.STREAM_TOKENS) if key in app])
    app[CALLS].refuse_while(lambda: shared_state_problem(app))
    return app
