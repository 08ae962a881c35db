"""baresip 1.0.0 as a real SIP caller: a config folder written per call, its audio source a WAV file,
what it hears recorded by its sndfile module, and its ctrl_tcp socket (netstring JSON) to dial, send
keys (RFC 4733) and hang up, with its call events read back.

    async with baresip_call(folder, sip_port, "check balance", lead_s=6) as phone:
        await phone.event("CALL_ESTABLISHED")
        await phone.keys("123#")
        await phone.hang_up()
    phone.heard()  # the -dec.wav baresip recorded: what it played to its (null) speaker
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

#: baresip's keys go this far apart: each a whole RFC 4733 event before the next
KEY_GAP_S = 0.35
#: silence after the caller's speech: aufile hangs up at the end of its file, the test decides instead
TAIL_SILENCE_S = 120
STARTUP_S = 10.0


def free_port() -> int:
    """A port free for both TCP and UDP, and its next one too (baresip's SIP listener takes TCP port+1)."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if all(free(kind, at) for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM) for at in (port, port + 1)):
            return port


def free(kind: socket.SocketKind, port: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


async def caller_audio(text: str, out: Path, lead_s: float) -> Path:
    """espeak-ng saying `text` as baresip's aufile source wants it (8 kHz mono 16-bit), after `lead_s` of
    silence and followed by TAIL_SILENCE_S more."""
    speech = out.with_suffix(".espeak.wav")
    await run("espeak-ng", "-v", "en-us+f2", "-s", "140", "-w", str(speech), text)
    await run("sox", "-D", str(speech), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed", str(out),
              "pad", f"{lead_s}", f"{TAIL_SILENCE_S}")
    return out


async def run(*cmd: str) -> None:
    """A command run off the event loop; its failure raised with its stderr."""
    process = await asyncio.create_subprocess_exec(*cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, err = await process.communicate()
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, cmd, stderr=err)


def write_config(folder: Path, source: Path, ctrl_port: int) -> None:
    sip_port, rtp = free_port(), free_port()
    (folder / "config").write_text("\n".join([
        f"sip_listen 127.0.0.1:{sip_port}",
        "net_interface 127.0.0.1",
        f"rtp_ports {rtp + 10}-{rtp + 50}",
        f"audio_source aufile,{source}",
        "audio_player alsa,null",
        "audio_alert alsa,null",
        "module_path /usr/lib/baresip/modules",
        *(f"module {name}.so" for name in ("g711", "aufile", "alsa", "sndfile")),
        *(f"module_app {name}.so" for name in ("account", "menu", "ctrl_tcp")),
        f"ctrl_tcp_listen 127.0.0.1:{ctrl_port}",
        f"snd_path {folder}",
        "",
    ]))
    (folder / "accounts").write_text("<sip:caller@127.0.0.1>;regint=0;audio_codecs=PCMU,PCMA\n")


class Baresip:
    """One running baresip and its control socket."""

    def __init__(self, folder: Path, process: asyncio.subprocess.Process, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.folder = folder
        self.process = process
        self._reader = reader
        self._writer = writer
        self.events: list[dict[str, Any]] = []  # every call event so far, oldest first
        self._responses: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._changed = asyncio.Event()
        self._reading = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                size = int((await self._reader.readuntil(b":"))[:-1])
                message = json.loads((await self._reader.readexactly(size + 1))[:-1])
                if message.get("event"):
                    self.events.append(message)
                    self._changed.set()
                else:
                    self._responses.put_nowait(message)

    async def command(self, command: str, params: str = "") -> dict[str, Any]:
        body = json.dumps({"command": command, "params": params, "token": command}).encode()
        self._writer.write(b"%d:%s," % (len(body), body))
        return await asyncio.wait_for(self._responses.get(), 10)

    async def event(self, kind: str, timeout: float = 30.0) -> dict[str, Any]:
        """The first call event of `kind` (e.g. CALL_ESTABLISHED, CALL_CLOSED), waiting for it."""

        async def seen() -> dict[str, Any]:
            while True:
                found = [e for e in self.events if e.get("type") == kind]
                if found:
                    return found[0]
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(seen(), timeout)

    async def keys(self, digits: str) -> None:
        """Each key through `sndcode` (baresip sends RFC 4733 events), KEY_GAP_S apart as a person would."""
        for key in digits:
            await self.command("sndcode", key)
            await asyncio.sleep(KEY_GAP_S)

    async def hang_up(self) -> None:
        await self.command("hangup")

    def heard(self) -> Path:
        """The WAV baresip recorded of what it received (its sndfile `-dec.wav`)."""
        [recording] = self.folder.glob("dump-*-dec.wav")
        return recording

    async def stop(self) -> None:
        with contextlib.suppress(ConnectionError, asyncio.TimeoutError):
            await self.command("quit")
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.process.wait(), 10)
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        self._writer.close()
        self._reading.cancel()


async def connect(port: int, process: asyncio.subprocess.Process) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """baresip's control socket, once it listens (it starts in well under STARTUP_S)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTUP_S
    while True:
        try:
            return await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if process.returncode is not None or loop.time() > deadline:
                raise
            await asyncio.sleep(0.05)


@asynccontextmanager
async def baresip_call(folder: Path, sip_port: int, says: str, lead_s: float,
                       to: str = "bot") -> AsyncIterator[Baresip]:
    """baresip calling `sip:TO@127.0.0.1:SIP_PORT`, saying `says` after `lead_s` of silence."""
    folder.mkdir(parents=True, exist_ok=True)
    ctrl_port = free_port()
    write_config(folder, await caller_audio(says, folder / "caller.wav", lead_s), ctrl_port)
    process = await asyncio.create_subprocess_exec("baresip", "-f", str(folder), stdin=subprocess.DEVNULL,
                                                   stdout=(folder / "baresip.log").open("wb"),
                                                   stderr=subprocess.STDOUT)
    try:
        phone = Baresip(folder, process, *await connect(ctrl_port, process))
    except OSError:
        if process.returncode is None:
            process.kill()
            await process.wait()
        raise AssertionError(f"baresip did not start: {(folder / 'baresip.log').read_text()[-2000:]}") from None
    try:
        await phone.command("dial", f"sip:{to}@127.0.0.1:{sip_port}")
        yield phone
    finally:
        await phone.stop()
