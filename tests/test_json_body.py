"""adapter.json_body: bodies parse as json.loads would, and hostile ones fail as one JsonBodyError."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapter.json_body import MAX_DEPTH, JsonBodyError, load_json, nesting_depth

SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4), max_leaves=30)


def depth(value: object) -> int:
    """The reference nesting depth, by recursion (fine for generated values)."""
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    return 0


@given(VALUES)
def test_any_json_value_round_trips_and_its_depth_is_counted_without_recursion(value: object) -> None:
    body = json.dumps(value, ensure_ascii=False)
    assert nesting_depth(body) == depth(value)
    assert load_json(body.encode()) == value


@given(st.binary(max_size=300) | st.text(alphabet='[]{}":,\\ 1a', max_size=300).map(str.encode))
def test_arbitrary_bytes_and_bracket_soup_parse_or_raise_json_body_error_only(body: bytes) -> None:
    try:
        load_json(body)
    except JsonBodyError as exc:
        assert "\n" not in str(exc)


@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
                                  b"[" * 100_000])
def test_a_body_nested_100000_deep_is_refused_not_a_recursion_error(body: bytes) -> None:
    with pytest.raises(JsonBodyError, match="deeper than"):
        load_json(body)


def test_the_limit_is_inclusive_and_adjustable() -> None:
    assert load_json("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None
    with pytest.raises(JsonBodyError):
        load_json("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    assert load_json("[[1]]", max_depth=2) == [[1]]
    with pytest.raises(JsonBodyError):
        load_json("[[1]]", max_depth=1)


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps({"a": "[" * 500 + '\\"{' * 500})
    assert nesting_depth(text) == 1
    assert load_json(text)["a"].startswith("[[[")


def test_non_utf8_and_invalid_json_say_why_in_one_line() -> None:
    with pytest.raises(JsonBodyError, match="not UTF-8"):
        load_json(b'{"a": "\xff"}')
    with pytest.raises(JsonBodyError, match="not valid JSON"):
        load_json(b'{"a": ')
    assert issubclass(JsonBodyError, ValueError)


def test_a_number_too_long_to_convert_is_a_body_error_not_a_bare_value_error():
    with pytest.raises(JsonBodyError, match="number too long"):
        load_json(b'{"n": ' + b"7" * 5000 + b"}")
