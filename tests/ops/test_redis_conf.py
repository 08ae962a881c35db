"""deploy/redis/redis.conf, run by a real redis-server: it starts, holds nothing on disk, and refuses
writes when full instead of evicting a live call's state."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
import redis.asyncio as redis
from redis.exceptions import ResponseError

from ops.nginx import free_port

CONF = Path(__file__).resolve().parents[2] / "deploy" / "redis" / "redis.conf"
REDIS_SERVER = shutil.which("redis-server")


@pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed (apt-get install redis-server)")
async def test_the_deploy_redis_conf_keeps_nothing_on_disk_and_never_evicts(tmp_path: Path):
    assert REDIS_SERVER is not None
    port = free_port()
    server = await asyncio.create_subprocess_exec(REDIS_SERVER, str(CONF), "--port", str(port), "--dir", str(tmp_path),
                                                  stdout=asyncio.subprocess.DEVNULL)
    client = redis.Redis(port=port)
    try:
        for _ in range(200):  # until it listens: a bound on a bug, not a pace
            try:
                await client.ping()
                break
            except redis.ConnectionError:
                await asyncio.sleep(0.05)
        config = await client.config_get("*")
        assert (config["maxmemory-policy"], config["appendonly"], config["save"]) == ("noeviction", "no", "")
        used = (await client.info("memory"))["used_memory"]
        await client.config_set("maxmemory", used + 512 * 1024)  # soon a full Redis
        with pytest.raises(ResponseError, match="maxmemory"):
            for n in range(64):
                await client.set(f"call:{n}", b"x" * 65536)
        assert await client.exists("call:0") == 1  # what was stored stays
    finally:
        await client.aclose()
        server.terminate()
        await server.wait()
