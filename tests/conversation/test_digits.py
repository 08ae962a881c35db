"""Digit collection as the bot asked: counts, ranges, finish key, timeout."""

from adapter.calls.keypad import Digits, DigitSpec, entry_ended_by, finish_key
from adapter.conversation.digits import DigitCollector


def press_all(collector: DigitCollector, keys: str) -> list[Digits]:
    return [entry for key in keys if (entry := collector.press(key)) is not None]


def test_a_fixed_count_finishes_on_the_last_digit():
    assert press_all(DigitCollector(DigitSpec(num=4)), "4532") == [Digits("4532", "4532", True)]


def test_the_finish_key_ends_early_and_is_not_a_digit():
    c = DigitCollector(DigitSpec(min=2, max=10))
    assert press_all(c, "123#") == [Digits("123", "123#", True)]


def test_finishing_below_the_minimum_is_incomplete():
    assert press_all(DigitCollector(DigitSpec(min=4, max=8)), "12#") == [Digits("12", "12#", False)]


def test_a_custom_finish_key():
    assert press_all(DigitCollector(DigitSpec(finish_on_key="*")), "99*") == [Digits("99", "99*", True)]
    # '#' is then an ordinary key
    c = DigitCollector(DigitSpec(max=3, finish_on_key="*"))
    assert press_all(c, "1#2") == [Digits("1#2", "1#2", True)]


def test_maximum_ends_the_entry():
    c = DigitCollector(DigitSpec(max=3))
    assert [c.press(k) for k in "123"] == [None, None, Digits("123", "123", True)]


def test_timeout_returns_what_was_typed():
    c = DigitCollector(DigitSpec(min=3))
    press_all(c, "12")
    assert c.timeout() == Digits("12", "12", False)
    c = DigitCollector(DigitSpec(finish_on_key="#"))
    press_all(c, "2024")
    assert c.started and c.timeout() == Digits("2024", "2024", True)


def test_a_menu_choice_is_one_key():
    assert press_all(DigitCollector(DigitSpec(num=1)), "2") == [Digits("2", "2", True)]


def test_the_door_side_rules_match_the_collector():
    """Twilio's <Gather> is sized by the same rules the conversation collects with."""
    assert finish_key(DigitSpec()) == "#" and finish_key(DigitSpec(finish_on_key="")) == ""
    assert entry_ended_by(DigitSpec(num=1), "3") == Digits("3", "3", True)
    assert entry_ended_by(DigitSpec(min=4), "1") is None
    assert entry_ended_by(DigitSpec(min=4), "#") == Digits("", "#", False)
