"""Kore markdown and SSML to plain text, and to one spoken utterance."""

from __future__ import annotations

import pytest

from adapter.speech.plain_text import plain_text, spoken_text


@pytest.mark.parametrize("text,plain", [
    ("*Bold* _italic_ ~strike~", "Bold italic strike"),
    ("[link](https://x.example) and ![a logo](https://x.example/l.png)", "link and a logo"),
    ("5 * 3 = 15, use account_number", "5 * 3 = 15, use account_number"),
    ("1. Savings\n2. Checking", "1. Savings\n2. Checking"),
    ("- one\n- two", "one\ntwo"),
    ("# Title\nbody text\n\nnext paragraph", "Title\nbody text\nnext paragraph"),
    ("`code` and &amp; entity", "code and & entity"),
    ('<speak>Hello <break time="1s"/><say-as interpret-as="digits">123</say-as></speak>', "Hello 123"),
    ("<speak>\nHi there\n</speak>", "Hi there"),
    ("  plain  sentence\n\n", "plain  sentence"),
])
def test_plain_text(text, plain):
    assert plain_text(text) == plain


def test_spoken_text_makes_each_line_a_sentence():
    assert spoken_text("Welcome\nHow can I help?\n1. Savings") == "Welcome. How can I help? 1. Savings."
    assert spoken_text("") == ""
