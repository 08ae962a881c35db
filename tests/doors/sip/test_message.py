"""SIP message parsing and writing: compact and folded headers, precise errors, the size cap."""

from __future__ import annotations

import pytest

from adapter.doors.sip.message import (
    MAX_MESSAGE_BYTES,
    Request,
    Response,
    SipParseError,
    parse,
    response,
    uri_of,
    user_of,
)

INVITE = (
    "INVITE sip:+15559870000@127.0.0.1:5060 SIP/2.0\r\n"
    "v: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bK-1;rport\r\n"
    "Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK-0\r\n"
    'f: "Alice" <sip:+15551230000@127.0.0.1>;tag=abc\r\n'
    "t: <sip:+15559870000@127.0.0.1>\r\n"
    "i: call-1@127.0.0.1\r\n"
    "CSeq: 1 INVITE\r\n"
    "Supported:\r\n"
    "Subject: a long\r\n"
    " folded line\r\n"
    "l: 4\r\n"
    "\r\n"
    "v=0\r\nextra"
)


def test_compact_folded_and_empty_headers_are_read() -> None:
    message = parse(INVITE.encode())
    assert isinstance(message, Request)
    assert (message.method, message.uri) == ("INVITE", "sip:+15559870000@127.0.0.1:5060")
    assert message.call_id == "call-1@127.0.0.1"
    assert message.cseq == (1, "INVITE")
    assert message.branch == "z9hG4bK-1"
    assert message.get("Supported") == ""
    assert message.get("Subject") == "a long folded line"
    assert len(message.all("Via")) == 2
    assert message.body == b"v=0\r"  # Content-Length cuts the body


def test_a_response_copies_every_via_and_adds_our_tag() -> None:
    request = parse(INVITE.encode())
    assert isinstance(request, Request)
    answer = parse(response(request, 180, to_tag="ours").encode())
    assert isinstance(answer, Response)
    assert (answer.status, answer.reason) == (180, "Ringing")
    assert answer.all("Via") == request.all("Via")
    assert answer.get("To") == "<sip:+15559870000@127.0.0.1>;tag=ours"
    assert answer.get("Content-Length") == "0"
    trying = parse(response(request, 100, to_tag="ours").encode())
    assert trying.get("To") == "<sip:+15559870000@127.0.0.1>"  # no tag on 100 Trying


@pytest.mark.parametrize(("data", "reason", "answerable"), [
    (b"\x00\x01garbage", "not a SIP start line", False),
    (INVITE.replace("i: call-1@127.0.0.1\r\n", "").encode(), "missing Call-ID", True),
    (INVITE.replace("CSeq: 1 INVITE\r\n", "").encode(), "missing CSeq", True),
    (INVITE.replace("v: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bK-1;rport\r\n", "")
     .replace("Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK-0\r\n", "").encode(), "missing Via", False),
    (INVITE.replace("CSeq: 1 INVITE", "CSeq: x INVITE").encode(), "bad CSeq", True),
    (INVITE.replace("CSeq: 1 INVITE", "CSeq: 1 BYE").encode(), "CSeq method differs", True),
    (INVITE.replace("l: 4", "l: 400").encode(), "Content-Length says 400", True),
    (INVITE.replace("Supported:", "Bad Header:").encode(), "bad header line", True),
    (b"INVITE sip:a@b SIP/2.0\r\nVia: x\r\n\r\n" + b"x" * MAX_MESSAGE_BYTES, "over the", False),
    (b"SIP/2.0 2000 OK\r\n\r\n", "bad status line", False),
    ("INVITE sip:a@b SIP/2.0\r\nVia: é\r\n\r\n".encode("latin-1"), "not UTF-8", False),
])
def test_bad_messages_name_their_fault(data: bytes, reason: str, answerable: bool) -> None:
    with pytest.raises(SipParseError) as caught:
        parse(data)
    assert reason in caught.value.reason
    assert (caught.value.message is not None) == answerable


def test_uris_and_users() -> None:
    assert uri_of('"Bob" <sip:+1555@host;user=phone>;tag=1') == "sip:+1555@host;user=phone"
    assert user_of("sip:+1555@host;user=phone") == "+1555"
    assert user_of("sip:host:5060") is None
