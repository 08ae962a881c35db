"""A call driven end to end: the real Kore.ai simulator over loopback, the real client, espeak-ng, a
real recognizer, and a manual clock so timeouts happen when a test says so."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest

from adapter.audio.decode import decode_audio
from adapter.audio.pcm import Pcm
from adapter.audio.resample import resample
from adapter.calls.events import AudioIn, OutputEvent
from adapter.calls.info import CallInfo
from adapter.conversation.call import Conversation
from adapter.conversation.services import AudioSpec, Services
from adapter.conversation.settings import ConversationSettings
from adapter.conversation.store import MemoryStore
from adapter.kore.client import KoreClient
from adapter.kore.settings import KoreSettings
from adapter.kore.simulator import Simulator, SimulatorConfig
from adapter.kore.simulator.config import generate_secret
from adapter.kore.simulator.embedded import serving
from adapter.kore.simulator.script import Script, parse_script
from adapter.speech.process_recognizer import process_recognizer
from adapter.speech.recognizer import Recognizer
from adapter.speech.recognizer_pool import RecognizerPool
from adapter.speech.settings import AsrSettings, TtsSettings
from adapter.speech.synthesizer import Synthesizer

from .manual_clock import ManualClock

E = TypeVar("E")
LIVE = AudioSpec(in_rate=8000, out_format="ulaw8k", live=True, reports_playback=True)


class CallDriver:
    """Plays the door: sends input events, reads output events until the one a test waits for."""

    def __init__(self, conversation: Conversation, simulator: Simulator, clock: ManualClock) -> None:
        self.conversation = conversation
        self.simulator = simulator
        self.clock = clock
        self.seen: list[OutputEvent] = []
        self._queue: asyncio.Queue[OutputEvent] = asyncio.Queue()
        self._pump = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for event in self.conversation.events():
            self._queue.put_nowait(event)

    def send(self, event: Any) -> None:
        self.conversation.send(event)

    async def next(self, kind: type[E], timeout: float = 20.0) -> E:
        """The next event of `kind`; the ones before it are kept in `seen` (and `since`)."""
        while True:
            event = await asyncio.wait_for(self._queue.get(), timeout)
            self.seen.append(event)
            if isinstance(event, kind):
                return event

    async def drain(self, settle: float = 0.3) -> list[OutputEvent]:
        """Every event that comes within `settle` seconds of real time (for asserting that none did)."""
        got: list[OutputEvent] = []
        try:
            while True:
                got.append(await asyncio.wait_for(self._queue.get(), settle))
        except TimeoutError:
            pass
        self.seen.extend(got)
        return got

    def since(self, index: int, kind: type[E]) -> list[E]:
        return [e for e in self.seen[index:] if isinstance(e, kind)]

    async def speak(self, pcm: Pcm, chunk_ms: int = 20) -> None:
        """Stream the caller's audio in 20 ms chunks, as a phone line does."""
        size = 2 * pcm.rate * chunk_ms // 1000
        for i in range(0, len(pcm.data), size):
            self.send(AudioIn(pcm.data[i:i + size]))
        await asyncio.sleep(0)

    async def advance(self, seconds: float, step: float = 0.25) -> None:
        """Move the clock in small steps, letting the loop (and loopback HTTP) run between them."""
        moved = 0.0
        while moved < seconds:
            self.clock.advance(min(step, seconds - moved))
            moved += step
            await asyncio.sleep(0.01)

    def bodies(self) -> list[dict[str, Any]]:
        """What Kore.ai received on the webhook, in order."""
        return [r.body for r in self.simulator.requests if r.method == "POST"]


@pytest.fixture(scope="session")
def recognizer() -> Recognizer:
    """PocketSphinx as the server runs it: in worker processes (it holds the GIL while it decodes,
    which would stall the event loop the conversation runs on)."""
    return process_recognizer(AsrSettings(engine="pocketsphinx"), 2)


@pytest.fixture
async def synthesizer() -> AsyncIterator[Synthesizer]:
    async with Synthesizer(TtsSettings()) as s:
        yield s


@pytest.fixture(scope="session")
def speech_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("speech")


@pytest.fixture(scope="session")
def say(speech_dir: Path) -> Callable[[str, int], Pcm]:
    """Caller speech made by espeak-ng (a voice PocketSphinx hears well), at the line's rate."""

    def make(text: str, rate: int = 8000) -> Pcm:
        path = speech_dir / f"{abs(hash(text))}.wav"
        if not path.exists():
            subprocess.run(["espeak-ng", "-v", "en-us+f2", "-s", "140", "-w", str(path), text], check=True)
        return resample(decode_audio(path.read_bytes()), rate)

    return make


@pytest.fixture
async def start_call(recognizer: Recognizer, synthesizer: Synthesizer):
    """`await start_call(script=None, audio=LIVE, recognizer=..., recognizer_pool=None, **settings)` -> a
    CallDriver whose welcome is under way (another recognizer than the session's PocketSphinx, a pool of the
    test's own)."""
    clock = ManualClock()
    opened: list[Any] = []
    http = aiohttp.ClientSession()

    async def start(script: dict[str, Any] | Script | None = None, audio: AudioSpec = LIVE,
                    recognizer: Recognizer = recognizer, recognizer_pool: RecognizerPool | None = None,
                    **settings: Any) -> CallDriver:
        if isinstance(script, dict):
            script = parse_script(script)
        config = SimulatorConfig(client_secret=generate_secret())
        simulator = Simulator(config, script, clock=clock)
        serve = serving(simulator)
        url = await serve.__aenter__()
        opened.append(serve)
        kore = KoreSettings().for_simulator(url, config.client_id, config.client_secret, config.bot_id)
        client = KoreClient(kore, http, clock)
        services = Services(recognizer, synthesizer, client, MemoryStore(), clock)
        if recognizer_pool is not None:
            services = dataclasses.replace(services, recognizer_pool=recognizer_pool)
        conversation = Conversation(CallInfo.new("test", "+15551230000", "+15559870000"), services, audio,
                                    ConversationSettings(**settings))
        conversation.start()
        opened.append(conversation)
        return CallDriver(conversation, simulator, clock)

    yield start
    for thing in reversed(opened):
        if isinstance(thing, Conversation):
            await thing.hang_up("test over")
        else:
            await thing.__aexit__(None, None, None)
    await http.close()


@pytest.fixture
async def fast_call():
    """`await fast_call(bot=dict(welcome=..., answers=...), heard=(...), audio=LIVE, durations=..., **settings)` -> a
    fakes.Door whose welcome has been asked for: a scripted bot, a fake recognizer hearing `heard` in
    turn, silent prompts, a manual clock; no process, no network, no real time."""
    from .fakes import LIVE, Door, FakeRecognizer, FakeSynthesizer, InlinePool, ScriptedBot, conversation_of

    doors: list[Any] = []

    async def start(heard: tuple[str | Exception, ...] = (), audio: AudioSpec = LIVE, streaming: bool = False,
                    bot: dict[str, Any] | None = None, durations: dict[str, float] | None = None,
                    **settings: Any) -> Any:
        clock = ManualClock()
        scripted = ScriptedBot(clock, **(bot or {}))
        recognizer = FakeRecognizer(*heard, whole_utterance=not streaming)
        synthesizer, pool = FakeSynthesizer(), InlinePool()
        synthesizer.durations.update(durations or {})
        conversation = conversation_of(clock, scripted, recognizer, synthesizer, pool, audio,
                                       ConversationSettings(**settings))
        door = Door(conversation, scripted, recognizer, synthesizer, clock, pool)
        doors.append(door)
        conversation.start()
        await door.settle()
        return door

    yield start
    for door in doors:
        await door.conversation.hang_up("test over")
