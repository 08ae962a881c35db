"""`kore-voice call SCRIPT.yaml`: run a scripted conversation through the REST door and check every turn.

The script format is in adapter/harness/call_script.py. Without --url the service runs in-process on
127.0.0.1 (any free port) with the settings of --config and the environment, so the embedded demo bot
when KORE_WEBHOOK_URL is unset. Exit status: 0 every expectation held, 1 one failed, 2 bad usage,
bad script or no service.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from aiohttp import web

from adapter.config import Settings
from adapter.harness.call_run import TURN_TIMEOUT_S, CallReport, ScriptRun, ServiceError, TurnRecord
from adapter.harness.call_script import CallScript, ScriptError, load_script
from adapter.server import create_app, local_url


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("call", help="run a YAML conversation against the service and check the bot's answers",
                       description="Prints each turn with its latency and writes the bot's audio as WAV files. "
                       "Exit status 0 when every expectation held, 1 when one failed, 2 for a bad script or "
                       "no service.")
    p.add_argument("script", type=Path, metavar="SCRIPT.yaml",
                   help="the conversation (format: adapter/harness/call_script.py)")
    p.add_argument("--url", help="a running service, e.g. http://127.0.0.1:8080 (default: start one in-process)")
    p.add_argument("--report", type=Path, metavar="FILE", help="write a JSON report here")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="where the bot's audio goes, made when the first arrives (default: a new temporary folder)")
    p.set_defaults(run=run)


def turn_line(turn: TurnRecord) -> str:
    """The printed line of a turn: what was sent and heard, what the bot said, how long it took."""
    heard = f' heard "{turn.transcript}" ({turn.input})' if turn.transcript else ""
    menu = f" menu: {', '.join(turn.menu)}" if turn.menu else ""
    end = " [call ended]" if turn.end_of_call else ""
    name = "welcome" if turn.step == 0 else f"step {turn.step}"
    return f"{name}: {turn.sent}{heard} -> {' '.join(turn.bot) or '(nothing)'}{menu}{end} ({turn.latency_ms:.0f} ms)"


@asynccontextmanager
async def in_process_service(settings: Settings) -> AsyncIterator[str]:
    """The service on 127.0.0.1, any free port, until the block ends; yields its URL."""
    service = dataclasses.replace(settings.service, host="127.0.0.1", port=0)
    runner = web.AppRunner(create_app(dataclasses.replace(settings, service=service)), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield local_url(*runner.addresses[0][:2])
    finally:
        await runner.cleanup()


async def run_call(script: CallScript, settings: Settings, url: str | None, out: Path | None) -> CallReport:
    key = settings.service.api_key
    headers = {"Authorization": f"Bearer {key.reveal()}"} if key is not None else {}
    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=TURN_TIMEOUT_S)) as http:
        if url is not None:
            return await ScriptRun(http, url, out, on_turn=lambda t: print(turn_line(t), flush=True)).run(script)
        async with in_process_service(settings) as local:
            return await ScriptRun(http, local, out, on_turn=lambda t: print(turn_line(t), flush=True)).run(script)


def run(args: argparse.Namespace) -> int:
    settings = Settings.load(args.config)
    try:
        script = load_script(args.script)
    except ScriptError as exc:
        print(f"kore-voice call: {exc}", file=sys.stderr)
        return 2
    try:
        report = asyncio.run(run_call(script, settings, args.url, args.out))
    except ServiceError as exc:
        print(f"kore-voice call: {exc}", file=sys.stderr)
        return 2
    for folder in sorted({str(Path(turn.audio).parent) for turn in report.turns if turn.audio}):
        print(f"bot audio: {folder}")
    if args.report is not None:
        args.report.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    for failure in report.failures:
        print(f"FAIL {failure}")
    print(f"{'passed' if report.passed else 'FAILED'}: {len(report.turns)} turns, {len(report.failures)} failures")
    return 0 if report.passed else 1
