"""`kore-voice serve`: run the service until Ctrl-C or SIGTERM, logging one JSON line per event."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import signal
import socket
import sys

from aiohttp import web

from adapter import json_log
from adapter.config import Settings
from adapter.server import create_app, local_url


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the voice service: REST door, health, readiness and metrics",
                       description="Prints one line with the URL once it is ready (port 0: any free port).")
    p.add_argument("--host", help="address to listen on (default KORE_VOICE_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default KORE_VOICE_PORT or 8080; 0: any free port)")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    p.set_defaults(run=run)


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before the app starts so port 0 is known to it (async callbacks)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family)


def run(args: argparse.Namespace) -> int:
    settings = Settings.load(args.config)
    host = args.host if args.host is not None else settings.service.host
    port = args.port if args.port is not None else settings.service.port
    try:
        sock = listen(host, port)
    except OSError as exc:
        print(f"kore-voice: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    service = dataclasses.replace(settings.service, host=host, port=sock.getsockname()[1])
    json_log.configure(args.log_level)
    asyncio.run(_serve(dataclasses.replace(settings, service=service), sock))
    return 0


async def _serve(settings: Settings, sock: socket.socket) -> None:
    runner = web.AppRunner(create_app(settings), access_log_class=json_log.JsonAccessLogger)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        kore = settings.kore
        bot = ("the embedded demo bot (no KORE_WEBHOOK_URL)" if kore.webhook is None
               else f"the Kore.ai bot at {kore.webhook.base}")
        print(f"kore-voice: serving on {local_url(*sock.getsockname()[:2])} with {bot}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()
