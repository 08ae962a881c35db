"""`kore-voice`: parses the command line and runs one subcommand."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from adapter import __version__
from adapter.commands import call, models, say, serve, simulator, token, transcribe
from adapter.config import ConfigError

COMMANDS = (serve, call, transcribe, say, models, token, simulator)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kore-voice",
        description="Voice and keypad channel for Kore.ai bots.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--config", metavar="FILE", help="TOML file of settings (environment wins)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except ConfigError as exc:
        print(f"kore-voice: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
