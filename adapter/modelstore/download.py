"""Fetches a model archive over HTTP into a `.part` file, resuming with Range, and checks its digests."""

from __future__ import annotations

import hashlib
import os
import re
import socket
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import aiohttp
from yarl import URL

from adapter.modelstore.errors import ChecksumMismatch, DownloadFailed, Unreachable

#: Called with (bytes in the .part file, total bytes or None) as the download advances.
ProgressFn = Callable[[int, int | None], None]

CHUNK = 1 << 16
# Connecting and each read may stall this long; the whole transfer has no limit (1.9 GB models).
TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=60)
CONTENT_RANGE_RE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
USER_AGENT = "kore-voice-adapter (model download)"


class _Interrupted(Exception):
    """The body stopped early; the bytes so far stay in the .part file for the next attempt."""

    def __init__(self, why: str, total: int | None = None) -> None:
        super().__init__(why)
        self.total = total


def host_of(url: URL) -> str:
    return f"{url.host}:{url.port}" if url.port and not url.is_default_port() else str(url.host)


def connect_reason(exc: aiohttp.ClientConnectorError) -> str:
    """'Name or service not known', 'Connection refused': the OS words, not aiohttp's wrapping."""
    err = exc.os_error
    if isinstance(err, socket.gaierror) and err.strerror:
        return err.strerror
    if err.errno:
        return os.strerror(err.errno)
    return str(err) or type(err).__name__


async def fetch(url: str, part: Path, *, size: int | None = None,
                progress: ProgressFn | None = None, attempts: int = 3) -> None:
    """Download `url` into `part`, continuing from whatever `part` already holds.

    A transfer cut mid-way is retried up to `attempts` times, each time asking only for the
    missing bytes (HTTP Range); a server that ignores Range (200) sends everything again.
    `size`, when known, must match what the server offers, which catches an HTML error page
    served with 200 long before the digest would.
    """
    target = URL(url)
    if target.scheme not in ("http", "https") or not target.host:
        raise DownloadFailed(f"{url}: not an http:// or https:// URL")
    async with aiohttp.ClientSession(timeout=TIMEOUT, trust_env=True,
                                     headers={"User-Agent": USER_AGENT}) as session:
        for attempt in range(1, attempts + 1):
            try:
                await _fetch_once(session, target, part, size, progress)
                return
            except aiohttp.ClientConnectorError as exc:
                raise Unreachable(f"cannot reach {host_of(target)}: {connect_reason(exc)}") from None
            except _Interrupted as exc:
                if attempt == attempts:
                    have = part.stat().st_size if part.exists() else 0
                    total = exc.total or size
                    of = f" of {total}" if total else ""
                    raise DownloadFailed(
                        f"download from {host_of(target)} interrupted after {have}{of} bytes "
                        f"({exc}); run the same command again to resume") from None


async def _fetch_once(session: aiohttp.ClientSession, url: URL, part: Path,
                      size: int | None, progress: ProgressFn | None) -> None:
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have == size:
        return  # complete already; the digest check decides if it is right
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        async with session.get(url, headers=headers) as resp:
            mode, done, total = _where_to_write(resp, url, part, have, size)
            await _copy_body(resp, part, mode, done, total, progress)
    except aiohttp.ClientConnectorError:
        raise
    except aiohttp.ServerDisconnectedError:
        raise _Interrupted("the server disconnected") from None
    except TimeoutError:
        raise _Interrupted(f"no answer for {TIMEOUT.sock_read:g} s") from None
    except aiohttp.ClientOSError as exc:
        raise _Interrupted(exc.strerror or str(exc)) from None


def _where_to_write(resp: aiohttp.ClientResponse, url: URL, part: Path, have: int,
                    size: int | None) -> tuple[str, int, int | None]:
    """(file mode, bytes already there, total bytes) for this answer, or why it is unusable."""
    if resp.status == 416 and have:
        # Our .part is not a prefix of the server's file (e.g. longer): start again from zero.
        part.unlink()
        raise _Interrupted("the partial file did not fit the server's copy; starting over")
    if resp.status == 206:
        start, total = _content_range(resp.headers.get("Content-Range", ""), url)
        if start != have:
            raise DownloadFailed(f"{url}: asked for bytes from {have}, got from {start}")
        mode, done = "ab", have
    elif resp.status == 200:  # also a server that ignores Range: everything again
        mode, done, total = "wb", 0, resp.content_length
    else:
        raise DownloadFailed(f"{url}: HTTP {resp.status} {resp.reason or ''}".rstrip())
    if size is not None and total is not None and total != size:
        raise DownloadFailed(f"{url}: the server offers {total} bytes, the catalog says {size}")
    return mode, done, total if total is not None else size


async def _copy_body(resp: aiohttp.ClientResponse, part: Path, mode: str, done: int,
                     total: int | None, progress: ProgressFn | None) -> None:
    with part.open(mode) as out:
        if progress:
            progress(done, total)
        try:
            async for chunk in resp.content.iter_chunked(CHUNK):
                out.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
        except aiohttp.ClientPayloadError:
            raise _Interrupted("the connection closed early", total) from None
        except TimeoutError:
            raise _Interrupted(f"no data for {TIMEOUT.sock_read:g} s", total) from None
        except aiohttp.ClientOSError as exc:
            raise _Interrupted(exc.strerror or str(exc), total) from None


def _content_range(value: str, url: URL) -> tuple[int, int | None]:
    """(first byte, total size or None) of a 206 answer's `Content-Range: bytes a-b/total`."""
    match = CONTENT_RANGE_RE.fullmatch(value.strip())
    if not match:
        raise DownloadFailed(f"{url}: partial answer without a usable Content-Range ({value!r})")
    total = match.group(3)
    return int(match.group(1)), None if total == "*" else int(total)


def file_digests(path: Path, algos: Iterable[str]) -> dict[str, str]:
    """Hex digests of one file for several algorithms, reading it once."""
    hashes = {algo: hashlib.new(algo) for algo in algos}
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            for h in hashes.values():
                h.update(block)
    return {algo: h.hexdigest() for algo, h in hashes.items()}


def check_digests(name: str, actual: Mapping[str, str], expected: Mapping[str, str]) -> None:
    """Every digest the catalog gives must match; raises on the first that does not."""
    for algo, want in expected.items():
        if actual[algo] != want:
            raise ChecksumMismatch(f"{name}: {algo} is {actual[algo]}, the catalog says {want}")
