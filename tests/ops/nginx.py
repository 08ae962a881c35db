"""A real nginx running deploy/nginx/kore-voice.conf (its upstream servers and listen port rewritten to
loopback ports) in front of the instances a test started: its own process, prefix and logs in a temp dir."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

CONF = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "kore-voice.conf"
START_S = 10.0  # for nginx to listen: a bound on a bug, not a pace

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
needs_nginx = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx-light)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def site_conf(listen: int, upstreams: list[int]) -> str:
    """deploy/nginx/kore-voice.conf listening on 127.0.0.1:`listen`, balancing over `upstreams`."""
    text = CONF.read_text()
    servers = re.findall(r"^    server 127\.0\.0\.1:\d+ (.*);$", text, re.MULTILINE)
    assert servers, "no upstream server lines in the deploy config"
    lines = "".join(f"    server 127.0.0.1:{port} {servers[0]};\n" for port in upstreams)
    text = re.sub(r"(?:^    server 127\.0\.0\.1:\d+ .*;\n)+", lines, text, count=1, flags=re.MULTILINE)
    text, listens = re.subn(r"^    listen 80;$", f"    listen 127.0.0.1:{listen};", text, flags=re.MULTILINE)
    assert listens == 1
    return text


def main_conf(prefix: Path) -> str:
    kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    temp = "".join(f"    {kind}_temp_path {prefix / kind};\n" for kind in kinds)
    return (f"worker_processes 1;\nerror_log {prefix / 'error.log'} info;\nevents {{ worker_connections 256; }}\n"
            f"http {{\n    access_log {prefix / 'access.log'};\n{temp}    include {prefix / 'kore-voice.conf'};\n}}\n")


@asynccontextmanager
async def balancer(prefix: Path, upstreams: list[int]) -> AsyncIterator[str]:
    """nginx in front of `upstreams` (ports on 127.0.0.1); yields its base URL."""
    assert NGINX is not None
    port = free_port()
    prefix.mkdir(parents=True, exist_ok=True)
    (prefix / "kore-voice.conf").write_text(site_conf(port, upstreams))
    (prefix / "nginx.conf").write_text(main_conf(prefix))
    process = await asyncio.create_subprocess_exec(
        NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", f"daemon off; pid {prefix / 'nginx.pid'};",
        stderr=asyncio.subprocess.PIPE)
    try:
        await asyncio.wait_for(listening(port, process), START_S)
        yield f"http://127.0.0.1:{port}"
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()


async def listening(port: int, process: asyncio.subprocess.Process) -> None:
    while True:
        if process.returncode is not None:
            assert process.stderr is not None
            raise AssertionError(f"nginx exited: {(await process.stderr.read()).decode()}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)  # nginx is still starting
            continue
        writer.close()
        await writer.wait_closed()
        return
