"""Speech engines side by side on recordings made at run time: word errors, speed, cost, memory, calls per core.

    .venv/bin/python bench/asr_compare.py [--full] [--model NAME_OR_PATH ...]

Recordings (nothing stored): 20 phrases an IVR hears - digits said one by one, money, menu answers,
free sentences - spoken by espeak-ng in four voices and rates, each phrase once as 16 kHz PCM and
once as 8 kHz μ-law (soxr to 8 kHz, then adapter.audio.g711 both ways), in different voices;
`--full` takes every voice. Every third recording carries white noise at 15 dB SNR. Seven silence
and noise clips (digital silence, hiss, hum, rumble, loud noise) must give "". Words are compared
lower-cased without punctuation, numbers spelled out on both sides ("$42.50" = "forty two dollars
and fifty cents"; a string of four or more digits is read digit by digit) and "and" dropped.

1. WER and real-time factor (decode seconds per audio second, both cores) per engine: PocketSphinx,
   Whisper tiny.en at beam 1 and 5 (our pipeline: resampling, voice-activity gate, segment gate), any
   bigger Whisper model installed under models/ or named with --model, and bare faster-whisper.
2. Our pipeline against bare faster-whisper on the same PCM (handed to it at 16 kHz) with the same
   decoding options, taking turns clip by clip: ratio = bare seconds / ours (goal >= 0.95).
3. Memory: how much a fresh process grows (RSS) loading each engine and decoding one utterance.
4. Calls one core sustains: the engine in a process pinned to one core (Whisper with cpu_threads=1).
   A call: the caller speaks one of the 8 kHz recordings, the utterance is decoded once it ends
   (voice activity gating: silence is never decoded), the bot answers for twice as long, the caller
   speaks again; decodes queue for the one core. Each recording's decode time is measured on the
   pinned core, then N calls with random phases are played out over 10 simulated minutes; the
   largest N whose every utterance is transcribed within real time (end of speech -> transcript
   <= the utterance's length) is printed, and the largest N for 95 % of them. For the default
   engine N real calls (threads; real sleeps for speech and the bot's turns) then run for 20 s as a
   check of that figure.
"""

from __future__ import annotations

import argparse
import heapq
import multiprocessing
import os
import platform
import random
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from num2words import num2words

from adapter.audio import g711
from adapter.audio.decode import decode_audio
from adapter.audio.pcm import Pcm
from adapter.audio.resample import resample
from adapter.config import Settings
from adapter.speech.engines import configured_whisper_model, find_whisper_models
from adapter.speech.recognizer import Recognizer
from adapter.speech.settings import AsrSettings
from adapter.speech.sphinx_engine import PocketSphinxRecognizer
from adapter.speech.whisper_engine import WhisperRecognizer, bundled_model

PHRASES = {
    "digits": ["my account number is four four seven one two zero nine",
               "call me back at five five five eight six seven three",
               "my pin is two nine one four",
               "the card ends in six zero three eight"],
    "money": ["I want to pay forty two dollars and fifty cents",
              "the balance should be one hundred and twenty dollars",
              "please transfer three hundred dollars to checking",
              "I was charged twice for the same order"],
    "menu": ["billing", "technical support", "yes", "no thanks", "speak to an agent", "check my balance"],
    "free": ["please transfer me to a customer service agent",
             "I would like to check the balance of my savings account",
             "I lost my credit card yesterday",
             "what time does the store open on Saturday",
             "my package never arrived and I need a refund",
             "can you tell me why my bill is so high this month"],
}
VOICES = [("en-us", 150), ("en-us+f3", 170), ("en-gb-x-rp", 140), ("en-us+m3", 185)]
NOISE_SNR_DB = 15
CALLER_SHARE = 1 / 3  # the caller speaks a third of the time; the bot the rest
SIMULATED_S = 600
CHECK_S = 20


@dataclass(frozen=True)
class Clip:
    text: str
    category: str
    voice: str
    phone: bool
    noisy: bool
    pcm: Pcm


# --- recordings --------------------------------------------------------------------------------

def espeak(text: str, voice: str, wpm: int) -> Pcm:
    with tempfile.NamedTemporaryFile(suffix=".wav") as wav:
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(wpm), "-w", wav.name, text], check=True,
                       capture_output=True)
        return decode_audio(Path(wav.name).read_bytes())


def phone_line(pcm: Pcm) -> Pcm:
    """8 kHz μ-law, as a phone call delivers it, decoded back to PCM."""
    narrow = resample(pcm, 8000)
    return Pcm(g711.ulaw_to_pcm16(g711.pcm16_to_ulaw(narrow.data)), 8000)


def recordings(full: bool) -> list[Clip]:
    rng = np.random.default_rng(0)
    clips = []
    phrases = [(cat, text) for cat, texts in PHRASES.items() for text in texts]
    for i, (category, text) in enumerate(phrases):
        for phone in (False, True):
            voices = VOICES if full else [VOICES[(i + 2 * phone) % len(VOICES)]]
            for voice, wpm in voices:
                raw = espeak(text, voice, wpm)
                x = raw.samples().astype(np.float32) / 32768 * 0.8
                pad = np.zeros(int(0.3 * raw.rate), np.float32)
                x = np.concatenate([pad, x, pad])
                noisy = len(clips) % 3 == 2
                if noisy:
                    power = np.mean(x[x != 0] ** 2)
                    x += rng.normal(0, np.sqrt(power / 10 ** (NOISE_SNR_DB / 10)), x.size).astype(np.float32)
                pcm = Pcm.from_array(x, raw.rate)
                pcm = phone_line(pcm) if phone else resample(pcm, 16000)
                clips.append(Clip(text, category, f"{voice}@{wpm}", phone, noisy, pcm))
    return clips


def quiet_clips() -> list[Pcm]:
    rng = np.random.default_rng(0)
    t = np.arange(32000) / 16000
    return [Pcm.silence(2.0, 8000), Pcm.silence(2.0, 16000),
            Pcm.from_array(rng.normal(0, 0.1, 32000), 16000), Pcm.from_array(rng.normal(0, 0.3, 16000), 8000),
            phone_line(Pcm.from_array(rng.normal(0, 0.005, 32000), 16000)),
            Pcm.from_array(0.05 * np.sin(2 * np.pi * 60 * t), 16000),
            Pcm.from_array(np.cumsum(rng.normal(0, 0.01, 32000)) / 30, 16000)]


# --- scoring -----------------------------------------------------------------------------------

MONEY = re.compile(r"\$(\d[\d,]*)(?:\.(\d\d))?")
DIGIT_RUN = re.compile(r"\b\d(?:[ ,.-]?\d)+\b")
NUMBER = re.compile(r"\b\d[\d,]*(?:\.\d+)?\b")


def _money(m: re.Match[str]) -> str:
    dollars, cents = int(m.group(1).replace(",", "")), int(m.group(2) or 0)
    return f"{num2words(dollars)} dollars" + (f" {num2words(cents)} cents" if cents else "")


def _digits(m: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", m.group())
    if len(digits) >= 4 and "," not in m.group():
        return " ".join(num2words(int(d)) for d in digits)
    return m.group()


def _number(m: re.Match[str]) -> str:
    value = m.group().replace(",", "")
    return num2words(float(value) if "." in value else int(value))


def words(text: str) -> list[str]:
    """Lower-case words with every number spelled out and "and" left out."""
    text = NUMBER.sub(_number, DIGIT_RUN.sub(_digits, MONEY.sub(_money, text)))
    return [w for w in re.findall(r"[a-z']+", text.lower().replace("-", " ")) if w != "and"]


def edits(ref: list[str], hyp: list[str]) -> int:
    """Word-level Levenshtein distance (substitutions, insertions, deletions)."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


# --- engines -----------------------------------------------------------------------------------

class BareWhisper:
    """faster-whisper alone (its own 30 s window) on PCM already at 16 kHz, with our decoding options: no
    resampling, no voice-activity gate, no segment gate, no shorter window, no transcript building."""

    def __init__(self, engine: WhisperRecognizer) -> None:
        from faster_whisper import WhisperModel

        self.engine = engine
        self.model = WhisperModel(str(engine.model_dir), device="cpu", compute_type="int8")

    def text(self, pcm: Pcm) -> str:
        segments, _ = self.model.transcribe(pcm.samples().astype(np.float32) / 32768.0,
                                            **self.engine.decode_options(pcm.duration_s, None))
        return " ".join(s.text.strip() for s in segments)


def whisper_models(extra: list[str], asr: AsrSettings) -> dict[str, Path]:
    """tiny.en (bundled), every Whisper model installed under models/, and those named with --model."""
    found = {"tiny.en": bundled_model()}
    for path in find_whisper_models(asr.models_dir):
        found[path.name.removeprefix("whisper-")] = path
    for name in extra:
        path = configured_whisper_model(AsrSettings(models_dir=asr.models_dir, whisper_model=name))
        found[path.name.removeprefix("whisper-")] = path
    return {name: path for name, path in found.items() if path is not None}


def make_engine(spec: tuple[str, Path | None, int], threads: int = 0) -> Recognizer:
    kind, path, beam = spec
    if kind == "pocketsphinx":
        return PocketSphinxRecognizer()
    assert path is not None
    return WhisperRecognizer(path, cpu_threads=threads, beam_size=beam)


# --- 1, 2: accuracy, speed, our cost ----------------------------------------------------------

class Tally:
    """Word errors per band and category, seconds spent, and silent clips heard as ""."""

    def __init__(self, name: str) -> None:
        self.name, self.spent, self.silent = name, 0.0, 0
        self.errors: dict[str, int] = {}
        self.words: dict[str, int] = {}

    def hear(self, hear: Callable[[Pcm], str], clip: Clip) -> None:
        start = time.perf_counter()
        heard = hear(clip.pcm)
        self.spent += time.perf_counter() - start
        ref = words(clip.text)
        for key in ("8k" if clip.phone else "16k", clip.category, "all"):
            self.errors[key] = self.errors.get(key, 0) + edits(ref, words(heard))
            self.words[key] = self.words.get(key, 0) + len(ref)

    def row(self, audio_s: float, quiet: int) -> str:
        wer = {key: f"{self.errors[key] / self.words[key]:.1%}" for key in self.errors}
        return (f"{self.name:34} {wer['16k']:>7} {wer['8k']:>7} {wer['all']:>7} {self.spent / audio_s:6.3f} "
                f"{self.silent:>4}/{quiet}   {wer['digits']:>6} {wer['money']:>6} {wer['menu']:>6} {wer['free']:>6}")


def score(hears: dict[str, Callable[[Pcm], str]], clips: list[Clip], quiet: list[Pcm]) -> list[Tally]:
    """Every engine on every clip; engines given together take turns clip by clip, in alternating
    order, so a busy neighbour on the machine slows them alike."""
    tallies = [Tally(name) for name in hears]
    funcs = list(hears.values())
    for i, clip in enumerate(clips):
        for k in (range(len(funcs)) if i % 2 == 0 else reversed(range(len(funcs)))):
            tallies[k].hear(funcs[k], clip)
    for tally, hear in zip(tallies, funcs, strict=True):
        tally.silent = sum(hear(pcm) == "" for pcm in quiet)
    return tallies


# --- 3: memory ---------------------------------------------------------------------------------

def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _rss_growth(spec: tuple[str, Path | None, int], pcm: Pcm, out: multiprocessing.Queue) -> None:
    before = rss_mb()
    make_engine(spec).transcribe(pcm)
    out.put(rss_mb() - before)


def rss_growth(spec: tuple[str, Path | None, int], pcm: Pcm) -> float:
    """MB a fresh process (the bench's imports done) grows loading the engine and decoding once."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    child = ctx.Process(target=_rss_growth, args=(spec, pcm, out))
    child.start()
    grown = out.get()
    child.join()
    return grown


# --- 4: calls per core -------------------------------------------------------------------------

def simulate(n: int, durations: list[float], services: list[float], seed: int = 0) -> list[float]:
    """Latency / utterance length of every utterance when `n` calls share one decoder (FIFO).

    Call c speaks recording (c + k) mod R for its k-th turn; after the transcript the bot talks
    for (1 - CALLER_SHARE) / CALLER_SHARE times the utterance, then the caller speaks again.
    """
    rng = random.Random(seed)
    count = len(durations)
    cycle = sum(durations) / count / CALLER_SHARE
    arrivals = []  # (end of speech, call, turn)
    for call in range(n):
        first = call % count
        heapq.heappush(arrivals, (rng.uniform(0, cycle) + durations[first], call, 0))
    free_at, ratios = 0.0, []
    while arrivals:
        ended, call, turn = heapq.heappop(arrivals)
        if ended > SIMULATED_S:
            continue
        clip = (call + turn) % count
        done = max(ended, free_at) + services[clip]
        free_at = done
        ratios.append((done - ended) / durations[clip])
        bot = durations[clip] * (1 - CALLER_SHARE) / CALLER_SHARE
        following = (call + turn + 1) % count
        heapq.heappush(arrivals, (done + bot + durations[following], call, turn + 1))
    return ratios


def _calls_per_core(spec: tuple[str, Path | None, int], clips: list[Pcm], core: int, check: bool,
                    out: multiprocessing.Queue) -> None:
    os.sched_setaffinity(0, {core})
    engine = make_engine(spec, threads=1)
    engine.transcribe(clips[0])  # warm up
    durations = [pcm.duration_s for pcm in clips]
    services = []
    for pcm in clips:
        start = time.perf_counter()
        engine.transcribe(pcm)
        services.append(time.perf_counter() - start)
    every = most_calls(lambda ratios: max(ratios), durations, services)
    most = most_calls(lambda ratios: float(np.percentile(ratios, 95)), durations, services)
    out.put((every, most, sum(services) / sum(durations), real_calls(engine, every, clips) if check else []))


def most_calls(measure: Callable[[list[float]], float], durations: list[float], services: list[float]) -> int:
    """The most calls for which `measure` of the latency ratios stays within real time (<= 1)."""
    n = 0
    while measure(simulate(n + 1, durations, services)) <= 1.0:
        n += 1
    return n


def real_calls(engine: Recognizer, n: int, clips: list[Pcm]) -> list[float]:
    """Latency / utterance length of every utterance of `n` calls run for CHECK_S seconds (threads)."""
    ratios: list[float] = []
    stop = time.monotonic() + CHECK_S
    rng = random.Random(1)
    cycle = sum(pcm.duration_s for pcm in clips) / len(clips) / CALLER_SHARE
    phases = [rng.uniform(0, cycle) for _ in range(n)]

    def call(number: int) -> None:
        time.sleep(phases[number])
        turn = 0
        while time.monotonic() < stop:
            pcm = clips[(number + turn) % len(clips)]
            time.sleep(pcm.duration_s)  # the caller speaks; the utterance ends
            ended = time.monotonic()
            engine.transcribe(pcm)
            ratios.append((time.monotonic() - ended) / pcm.duration_s)
            time.sleep(pcm.duration_s * (1 - CALLER_SHARE) / CALLER_SHARE)
            turn += 1

    threads = [threading.Thread(target=call, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return ratios


def calls_per_core(spec: tuple[str, Path | None, int], clips: list[Pcm],
                   check: bool) -> tuple[int, int, float, list[float]]:
    """(calls with every utterance within real time, with 95 % within, real-time factor on the
    core, latency ratios of the real check if `check`)."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    core = max(os.sched_getaffinity(0))
    child = ctx.Process(target=_calls_per_core, args=(spec, clips, core, check, out))
    child.start()
    result = out.get()
    child.join()
    return result


# --- main --------------------------------------------------------------------------------------

def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    import ctranslate2
    import faster_whisper
    return (f"{platform.node()}: {cpu}, {os.cpu_count()} CPUs ({len(os.sched_getaffinity(0))} usable), "
            f"Python {platform.python_version()}, faster-whisper {faster_whisper.__version__}, "
            f"ctranslate2 {ctranslate2.__version__}, load {os.getloadavg()[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="every phrase in every voice (4x the audio)")
    parser.add_argument("--model", action="append", default=[], help="another Whisper model: a name "
                        "under models/ (whisper-base.en) or a CTranslate2 folder")
    args = parser.parse_args()
    started = time.perf_counter()
    asr = Settings.load().asr
    print(machine())
    clips, quiet = recordings(args.full), quiet_clips()
    audio_s = sum(c.pcm.duration_s for c in clips)
    print(f"{len(clips)} recordings ({sum(c.phone for c in clips)} at 8 kHz μ-law, {sum(c.noisy for c in clips)} "
          f"noisy), {audio_s:.1f} s of speech; {len(quiet)} silence/noise clips; defaults: beam "
          f"{asr.whisper_beam}")

    at_16k = {id(pcm): resample(pcm, 16000) for pcm in [*(c.pcm for c in clips), *quiet]}
    models = whisper_models(args.model, asr)
    default = ("whisper", models["tiny.en"], asr.whisper_beam)
    specs = {"pocketsphinx": ("pocketsphinx", None, 0)}
    for beam in sorted({1, 5, asr.whisper_beam}):
        mark = " (default)" if beam == asr.whisper_beam else ""
        specs[f"whisper tiny.en beam {beam}{mark}"] = ("whisper", models["tiny.en"], beam)
    for name, path in models.items():
        if name != "tiny.en":
            specs[f"whisper {name} beam {asr.whisper_beam}"] = ("whisper", path, asr.whisper_beam)

    print(f"\n1. {'engine':31} {'16 kHz':>7} {'8k μlaw':>7} {'all':>7} {'RTF':>6} {'silent':>6}   "
          f"{'digits':>6} {'money':>6} {'menu':>6} {'free':>6}")
    engines = {name: make_engine(spec) for name, spec in specs.items()}
    for engine in engines.values():
        engine.transcribe(clips[0].pcm)  # warm up
    ours = next(e for name, e in engines.items() if "(default)" in name)
    assert isinstance(ours, WhisperRecognizer)
    bare = BareWhisper(ours)
    ratio = float("nan")
    for name, engine in engines.items():
        hears = {name: lambda pcm, e=engine: e.transcribe(pcm).text}
        if engine is ours:  # the bare model on the same PCM (handed over at 16 kHz), turn about with ours
            hears[f"bare faster-whisper beam {asr.whisper_beam}"] = lambda pcm: bare.text(at_16k[id(pcm)])
        tallies = score(hears, clips, quiet)
        for tally in tallies:
            print(tally.row(audio_s, len(quiet)), flush=True)
        if engine is ours:
            ratio = tallies[1].spent / tallies[0].spent
    print(f"\n2. ours against bare faster-whisper (tiny.en, beam {asr.whisper_beam}, same PCM and decoding "
          f"options): ratio bare/ours {ratio:.3f} (goal >= 0.95)")

    print("\n3. memory: a fresh process grows by")
    for name, spec in {"pocketsphinx": specs["pocketsphinx"], "whisper tiny.en": default,
                       **{f"whisper {n}": ("whisper", p, asr.whisper_beam) for n, p in models.items()
                          if n != "tiny.en"}}.items():
        print(f"   {name:20} {rss_growth(spec, clips[1].pcm):6.0f} MB")

    phone = [c.pcm for c in clips if c.phone]
    print(f"\n4. calls one core sustains (caller speaks {CALLER_SHARE:.0%} of the time, decodes only of "
          "finished utterances, each transcript within real time)")
    for name, spec in {"pocketsphinx": specs["pocketsphinx"],
                       f"whisper tiny.en beam {asr.whisper_beam}": default}.items():
        every, most, rtf, ratios = calls_per_core(spec, phone, check=spec == default)
        checked = (f"; {every} real calls for {CHECK_S} s: {len(ratios)} utterances, worst latency "
                   f"{max(ratios):.2f} x utterance length" if ratios else "")
        print(f"   {name:26} {every:3d} calls ({most} if 95 % in real time is enough; real-time factor "
              f"on one core {rtf:.3f}{checked})")
    print(f"\nbench took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
