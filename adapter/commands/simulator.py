"""`kore-voice simulator`: an offline Kore.ai Webhook channel with a scripted bot, on 127.0.0.1."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
from pathlib import Path

from adapter.config import ConfigError, Reader, load_mapping
from adapter.kore.settings import KoreSettings
from adapter.kore.simulator import Simulator, SimulatorConfig, load_script, serving

DEFAULT_PORT = 8780


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulator", help="run an offline Kore.ai webhook channel with a scripted bot")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"port on 127.0.0.1 (default {DEFAULT_PORT}, 0: any)")
    p.add_argument("--script", type=Path, metavar="FILE",
                   help="bot script in YAML (default: the banking IVR)")
    p.add_argument("--post-url", metavar="URL",
                   help="async mode: where to POST replies (our /kore/callback/...)")
    p.add_argument("--no-polling", action="store_true", help="v2 sync: answer slow steps in one response")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    kore = KoreSettings.read(Reader(load_mapping(args.config)))
    if kore.mode == "async" and not args.post_url:
        raise ConfigError("--post-url is required when KORE_MODE=async")
    config = SimulatorConfig.from_settings(kore, post_url=args.post_url)
    config = dataclasses.replace(config, polling=not args.no_polling)
    asyncio.run(_serve(Simulator(config, load_script(args.script)), args.port))
    return 0


async def _serve(simulator: Simulator, port: int) -> None:
    async with serving(simulator, "127.0.0.1", port) as url:
        print(banner(simulator, url), flush=True)
        await asyncio.Event().wait()


def banner(simulator: Simulator, url: str) -> str:
    """How to reach the simulator; prints the client secret only when it is the simulator's own."""
    config = simulator.config
    polling = "polling on" if config.polling else "polling off"
    lines = [f'Kore.ai simulator "{simulator.bot.script.name}" on {url} ({config.mode} mode, {polling})',
             f"  KORE_WEBHOOK_URL={url}/chatbot/v2/webhook/{config.bot_id}",
             f"    (v1 shape: {url}/chatbot/hooks/{config.bot_id})",
             f"  KORE_CLIENT_ID={config.client_id}"]
    if config.secret_generated:
        # A throwaway secret made for this run: the simulator's own, not a real credential.
        lines.append(f"  KORE_CLIENT_SECRET={config.client_secret.reveal()}  (generated for this run)")
    else:
        lines.append("  KORE_CLIENT_SECRET / KORE_PRIVATE_KEY_FILE: as configured (not printed)")
    jti = str(config.enforce_jti).lower()
    lines.append(f"  KORE_JWT_ALGORITHM={config.algorithm}  KORE_ENFORCE_JTI={jti}")
    lines.append("Press Ctrl-C to stop.")
    return "\n".join(lines)
