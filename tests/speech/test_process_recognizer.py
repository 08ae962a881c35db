"""The recogniser in worker processes gives what the engine gives in-process, whole or streamed."""

from __future__ import annotations

from adapter.audio.pcm import Pcm
from adapter.speech.process_recognizer import process_recognizer
from adapter.speech.settings import AsrSettings

SETTINGS = AsrSettings(engine="pocketsphinx")
MENU = ["check my balance", "talk to an agent"]


def test_workers_transcribe_as_the_engine_does(speak, sphinx):
    pooled = process_recognizer(SETTINGS, 2)
    assert process_recognizer(SETTINGS, 2) is pooled  # started once per process
    assert (pooled.name, pooled.sample_rate) == ("pocketsphinx", sphinx.sample_rate)
    speech = speak("talk to an agent", phone=True)
    here, there = sphinx.transcribe(speech, MENU), pooled.transcribe(speech, MENU)
    assert there.text == here.text == "talk to an agent"
    # the same words at the same times (confidences vary a little with a pooled decoder's history)
    assert [(w.text, w.start_s, w.end_s) for w in there.words] == [(w.text, w.start_s, w.end_s) for w in here.words]
    assert pooled.transcribe(Pcm(b"", 8000)).text == ""


def test_a_stream_is_decoded_by_a_worker_at_finish(speak):
    pooled = process_recognizer(SETTINGS, 2)
    speech = speak("check my balance", phone=True)
    stream = pooled.open_stream(speech.rate, MENU)
    for i in range(0, len(speech.data), 321):  # odd chunk sizes: samples split across chunks
        stream.accept(speech.data[i:i + 321])
        assert stream.partial() == ""
    assert stream.finish().text == "check my balance"
