"""Bot text (plain, markdown, SSML) becomes words a voice reads well."""

import pytest

from adapter.speech.speakable import Pause, Say, segments, spell_digits, verbalize


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("Your balance is $42.10.", "Your balance is forty two dollars and ten cents."),
        ("$1 fee", "one dollar fee"),
        ("only $0.50", "only fifty cents"),
        ("$1,250", "one thousand two hundred and fifty dollars"),
        ("£3.01", "three pounds and one penny"),
        ("at 10:30 am.", "at ten thirty a m."),
        ("at 9:05", "at nine oh five"),
        ("at 14:00", "at fourteen o'clock"),
        ("call 555-1234", "call five five five, one two three four"),
        ("account 12345678", "account one two three four five six seven eight"),
        ("15% off", "fifteen percent off"),
        ("on the 3rd", "on the third"),
        ("3.5 stars", "three point five stars"),
        ("42 items", "forty two items"),
        ("no numbers here", "no numbers here"),
    ],
)
def test_numbers_amounts_and_times_are_spoken(text, spoken):
    assert verbalize(text) == spoken


def test_markdown_is_stripped_lines_become_sentences_and_numbers_are_spoken():
    text = "# Menu\n**Choose** one:\n- _Savings_ at 2%\n- `Checking`\n[Help](https://x.example/help)"
    assert segments(text) == [Say("Menu. Choose one: Savings at two percent. Checking. Help.")]


def test_ssml_subset_gives_pauses_digits_and_rates():
    ssml = ('<speak>Press <say-as interpret-as="digits">123</say-as><break time="500ms"/>'
            '<prosody rate="slow">say it 2 times</prosody> <break strength="strong"/>done</speak>')
    assert segments(ssml) == [
        Say("Press one two three"), Pause(0.5), Say("say it two times", 0.75), Pause(0.7), Say("done"),
    ]


def test_ssml_without_speak_root_and_percent_rates():
    assert segments('Hello <break time="1.5s"/><prosody rate="120%">world</prosody>') == [
        Say("Hello"), Pause(1.5), Say("world", 1.2)]


def test_pauses_are_capped_and_bad_markup_is_read_as_text():
    assert segments('<break time="60s"/>') == [Pause(5.0)]
    assert segments("<speak>Hi <b>there</speak>") == [Say("Hi there.")]


def test_spelling_characters_and_empty_text():
    assert segments('<say-as interpret-as="characters">ab1</say-as>') == [Say("A B one")]
    assert spell_digits("+1 555 0100") == "one, five five five, zero one zero zero"
    assert segments("") == [] and segments("   **  ") == []
