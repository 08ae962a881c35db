"""`kore-voice token --sub ID`: print a JWT for the configured Kore.ai app (for curl and debugging)."""

from __future__ import annotations

import argparse

from adapter.calls.clock import SystemClock
from adapter.config import Reader, load_mapping
from adapter.kore.jwt_auth import TokenMinter
from adapter.kore.settings import KoreSettings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("token", help="print a JWT for the configured Kore.ai app")
    p.add_argument("--sub", required=True, metavar="ID", help="the user id (from.id) the token is for")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    kore = KoreSettings.read(Reader(load_mapping(args.config)))
    print(TokenMinter(kore, SystemClock()).token(args.sub))
    return 0
