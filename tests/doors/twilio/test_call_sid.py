import pytest

from adapter.api_errors import ApiError
from adapter.doors.twilio.call_sid import call_sid, user_id

SID = "CA" + "0123456789abcdef" * 2


def test_a_call_sid_names_its_conversation() -> None:
    assert call_sid({"CallSid": SID}) == SID
    assert user_id(SID) == "twilio-" + SID


@pytest.mark.parametrize("bad", ["", "CA123", "XX" + "0" * 32, SID + "0", "CA" + "g" * 32])
def test_anything_else_is_a_400(bad: str) -> None:
    with pytest.raises(ApiError) as caught:
        call_sid({"CallSid": bad})
    assert caught.value.status == 400
