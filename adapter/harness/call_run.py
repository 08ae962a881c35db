"""Running a call script against the REST door: one call, each step one turn, every expectation checked,
the bot's audio of each turn saved as a WAV."""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from adapter.harness.call_script import CallScript, Expect, Step
from adapter.speech.numbers import as_digits

TURN_TIMEOUT_S = 120.0


class ServiceError(Exception):
    """The service cannot be reached, or would not start the call; one line."""


@dataclass
class TurnRecord:
    """One turn as it went: step 0 is the welcome."""

    step: int
    sent: str
    transcript: str
    input: str
    bot: list[str]
    menu: list[str] | None
    end_of_call: bool
    latency_ms: float
    audio: str | None = None  # the WAV of what the bot said
    failures: list[str] = field(default_factory=list)


@dataclass
class CallReport:
    url: str
    call_id: str
    turns: list[TurnRecord] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "call_id": self.call_id, "passed": self.passed,
                "turns": [asdict(t) for t in self.turns], "failures": self.failures}


_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
_WORD = re.compile(r"\w+")


def normalised(text: str) -> str:
    """A transcript as a script compares it: engines differ in case, punctuation and number forms
    ("Check my balance." / "check my balance", "two four six eight" / "2468", "1,234" / "1234")."""
    return " ".join(_WORD.findall(_THOUSANDS.sub("", as_digits(text.lower()))))


def check(expect: Expect, transcript: str, texts: list[str], menu: list[str] | None, ended: bool) -> list[str]:
    """What the turn got wrong, one line each (nothing when every expectation held)."""
    failures = []
    if expect.transcript is not None and normalised(transcript) != normalised(expect.transcript):
        failures.append(f"heard {transcript!r}, expected {expect.transcript!r}")
    said = " ".join(texts)
    if expect.bot is not None and not expect.bot.search(said):
        failures.append(f"the bot said {said!r}, which does not match /{expect.bot.pattern}/")
    if expect.menu is not None and list(expect.menu) != (menu or []):
        failures.append(f"the menu was {menu or []}, expected {list(expect.menu)}")
    if expect.end_of_call is not None and ended != expect.end_of_call:
        failures.append("the call ended" if ended else "the call did not end")
    return failures


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _labels(menu: list[dict[str, str]] | None) -> list[str] | None:
    return [option["label"] for option in menu] if menu is not None else None


async def _error_line(resp: aiohttp.ClientResponse) -> str:
    try:
        error = (await resp.json())["error"]
        return f"{resp.status} {error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError, aiohttp.ContentTypeError):
        return f"{resp.status} {resp.reason}"


class ScriptRun:
    """One script's call through one HTTP session; `on_turn` hears of each turn as it ends.

    The audio folder `out` (None: a new temporary folder) is made only when the first audio arrives,
    so a run that never reached the service leaves nothing behind."""

    def __init__(self, http: aiohttp.ClientSession, url: str, out: Path | None,
                 on_turn: Callable[[TurnRecord], None] = lambda turn: None) -> None:
        self._http = http
        self._url = url.rstrip("/")
        self._out = out
        self._on_turn = on_turn

    async def run(self, script: CallScript) -> CallReport:
        """Raises ServiceError when the call cannot start; failed turns go into the report."""
        started = time.perf_counter()
        try:
            resp = await self._http.post(f"{self._url}/v1/calls", json={"from": script.caller, "to": script.called})
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise ServiceError(f"cannot reach the service at {self._url}: {_one_line(exc)}") from None
        if resp.status == 401:  # the service's own words are for HTTP clients (an Authorization header)
            raise ServiceError("the service would not start a call: 401, the API key is missing or wrong; "
                               "set KORE_VOICE_API_KEY to the service's key")
        if resp.status != 201:
            raise ServiceError(f"the service would not start a call: {await _error_line(resp)}")
        answer = await resp.json()
        report = CallReport(self._url, answer["id"])
        welcome = answer["welcome"]
        ended = await self._record(report, 0, "(call start)", "", "", welcome["texts"], welcome["menu"],
                                   welcome["end_of_call"], welcome["audio_url"], started, script.welcome)
        for number, step in enumerate(script.steps, start=1):
            if ended:
                report.failures.append(f"step {number} ({step.label}): the call ended before it")
                return report
            ended = await self._turn(report, number, step)
        if not ended:
            await self._hang_up(report.call_id)
        return report

    async def _hang_up(self, call_id: str) -> None:
        async with self._http.delete(f"{self._url}/v1/calls/{call_id}"):
            pass

    async def _turn(self, report: CallReport, number: int, step: Step) -> bool:
        """One step; True when the call is over (ended, or failed so it cannot go on)."""
        started = time.perf_counter()
        path = f"{self._url}/v1/calls/{report.call_id}/turns"
        try:
            if step.digits is not None:
                resp = await self._http.post(path, json={"digits": step.digits})
            else:
                resp = await self._http.post(path, data=step.audio, headers={"Content-Type": step.content_type})
            if resp.status != 200:
                report.failures.append(f"step {number} ({step.label}): the service answered {await _error_line(resp)}")
                await self._hang_up(report.call_id)
                return True
            answer = await resp.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            report.failures.append(f"step {number} ({step.label}): {_one_line(exc)}")
            return True
        bot = answer["bot"]
        return await self._record(report, number, step.label, answer["transcript"], answer["input"], bot["texts"],
                                  bot["menu"], answer["end_of_call"], answer["audio_url"], started, step.expect)

    async def _record(self, report: CallReport, number: int, sent: str, transcript: str, heard_as: str,
                      texts: list[str], menu: list[dict[str, str]] | None, ended: bool, audio_url: str | None,
                      started: float, expect: Expect) -> bool:
        latency_ms = round((time.perf_counter() - started) * 1000, 1)
        labels = _labels(menu)
        turn = TurnRecord(number, sent, transcript, heard_as, texts, labels, ended, latency_ms)
        turn.failures = check(expect, transcript, texts, labels, ended)
        if audio_url is not None:
            turn.audio = await self._save_audio(audio_url, f"turn-{number:02d}.wav")
        report.turns.append(turn)
        where = "welcome" if number == 0 else f"step {number} ({sent})"
        report.failures.extend(f"{where}: {failure}" for failure in turn.failures)
        self._on_turn(turn)
        return ended

    async def _save_audio(self, url: str, name: str) -> str | None:
        resp = await self._http.get(url, params={"format": "wav16k"})
        if resp.status != 200:
            return None
        if self._out is None:
            self._out = Path(tempfile.mkdtemp(prefix="kore-voice-call-"))
        self._out.mkdir(parents=True, exist_ok=True)
        file = self._out / name
        file.write_bytes(await resp.read())
        return str(file)
