"""Downloader against a real aiohttp server on 127.0.0.1: resume, cut transfers, errors, digests."""

from __future__ import annotations

import errno
import socket
import types
from pathlib import Path

import aiohttp
import pytest
from fake_model_host import ModelHost

from adapter.modelstore.download import (
    check_digests,
    connect_reason,
    fetch,
    file_digests,
)
from adapter.modelstore.errors import ChecksumMismatch, DownloadFailed, Unreachable


@pytest.fixture
async def host(aiohttp_server, zip_bytes):
    model_host = ModelHost(files={"m.zip": zip_bytes})
    server = await aiohttp_server(model_host.app(), host="127.0.0.1")
    model_host.base = str(server.make_url(""))
    return model_host


async def test_downloads_whole_file_and_reports_progress(host, zip_bytes, tmp_path):
    part = tmp_path / "m.zip.part"
    seen: list[tuple[int, int | None]] = []
    await fetch(f"{host.base}/m.zip", part, size=len(zip_bytes), progress=lambda d, t: seen.append((d, t)))
    assert part.read_bytes() == zip_bytes
    assert seen[0] == (0, len(zip_bytes))
    assert seen[-1] == (len(zip_bytes), len(zip_bytes))
    assert host.requests == [("m.zip", None)]


async def test_resumes_from_existing_part_with_range(host, zip_bytes, tmp_path):
    part = tmp_path / "m.zip.part"
    part.write_bytes(zip_bytes[:1000])
    await fetch(f"{host.base}/m.zip", part, size=len(zip_bytes))
    assert part.read_bytes() == zip_bytes
    assert host.requests == [("m.zip", "bytes=1000-")]


async def test_server_ignoring_range_restarts_from_zero(host, zip_bytes, tmp_path):
    host.ignore_range = True
    part = tmp_path / "m.zip.part"
    part.write_bytes(b"x" * 1000)
    await fetch(f"{host.base}/m.zip", part, size=len(zip_bytes))
    assert part.read_bytes() == zip_bytes


async def test_cut_transfer_is_resumed_in_the_same_call(host, zip_bytes, tmp_path):
    host.cut["m.zip"] = (70_000, 1)
    part = tmp_path / "m.zip.part"
    await fetch(f"{host.base}/m.zip", part, size=len(zip_bytes))
    assert part.read_bytes() == zip_bytes
    assert host.requests == [("m.zip", None), ("m.zip", "bytes=70000-")]


async def test_transfer_cut_every_time_keeps_part_and_says_resume(host, zip_bytes, tmp_path):
    host.cut["m.zip"] = (50_000, 3)
    part = tmp_path / "m.zip.part"
    with pytest.raises(DownloadFailed) as err:
        await fetch(f"{host.base}/m.zip", part, size=len(zip_bytes), attempts=3)
    assert err.value.reason == (f"download from 127.0.0.1:{host.base.rsplit(':', 1)[1]} interrupted after "
                                f"150000 of {len(zip_bytes)} bytes (the connection closed early); "
                                "run the same command again to resume")
    assert part.read_bytes() == zip_bytes[:150_000]
    await fetch(f"{host.base}/m.zip", part, size=len(zip_bytes))
    assert part.read_bytes() == zip_bytes
    assert host.requests[-1] == ("m.zip", "bytes=150000-")


async def test_complete_part_is_not_fetched_again(host, zip_bytes, tmp_path):
    part = tmp_path / "m.zip.part"
    part.write_bytes(zip_bytes)
    await fetch(f"{host.base}/m.zip", part, size=len(zip_bytes))
    assert host.requests == []


async def test_part_longer_than_file_starts_over(host, zip_bytes, tmp_path):
    part = tmp_path / "m.zip.part"
    part.write_bytes(zip_bytes + b"junk")
    await fetch(f"{host.base}/m.zip", part)
    assert part.read_bytes() == zip_bytes
    assert host.requests == [("m.zip", f"bytes={len(zip_bytes) + 4}-"), ("m.zip", None)]


async def test_404_is_a_clear_error(host, tmp_path):
    with pytest.raises(DownloadFailed) as err:
        await fetch(f"{host.base}/missing.zip", tmp_path / "x.part")
    assert err.value.reason == f"{host.base}/missing.zip: HTTP 404 Not Found"


async def test_size_different_from_catalog_is_refused_before_writing(host, zip_bytes, tmp_path):
    with pytest.raises(DownloadFailed) as err:
        await fetch(f"{host.base}/m.zip", tmp_path / "x.part", size=123)
    assert err.value.reason == (f"{host.base}/m.zip: the server offers {len(zip_bytes)} bytes, "
                                "the catalog says 123")
    assert not (tmp_path / "x.part").exists()


async def test_connection_refused_is_unreachable(closed_port, tmp_path):
    with pytest.raises(Unreachable) as err:
        await fetch(f"http://127.0.0.1:{closed_port}/m.zip", tmp_path / "x.part")
    assert err.value.reason == f"cannot reach 127.0.0.1:{closed_port}: Connection refused"


async def test_non_http_url_is_refused(tmp_path):
    with pytest.raises(DownloadFailed) as err:
        await fetch("ftp://example.org/m.zip", tmp_path / "x.part")
    assert err.value.reason == "ftp://example.org/m.zip: not an http:// or https:// URL"


def test_dns_failure_reason_is_the_resolver_message():
    key = types.SimpleNamespace(host="alphacephei.com", port=443, ssl=True)  # only read by str()
    exc = aiohttp.ClientConnectorError(key, socket.gaierror(socket.EAI_NONAME, "Name or service not known"))
    assert connect_reason(exc) == "Name or service not known"
    refused = aiohttp.ClientConnectorError(
        key, ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed"))
    assert connect_reason(refused) == "Connection refused"


def test_digests_of_known_content(tmp_path: Path):
    path = tmp_path / "abc"
    path.write_bytes(b"abc")
    digests = file_digests(path, ["sha256", "md5"])
    assert digests == {
        "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "md5": "900150983cd24fb0d6963f7d28e17f72",
    }
    check_digests("abc", digests, {"md5": "900150983cd24fb0d6963f7d28e17f72"})
    with pytest.raises(ChecksumMismatch) as err:
        check_digests("abc", digests, {"sha256": "0" * 64})
    assert err.value.reason == (f"abc: sha256 is {digests['sha256']}, the catalog says {'0' * 64}")
