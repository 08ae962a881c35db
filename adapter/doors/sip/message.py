"""SIP messages (RFC 3261 §7): parsed from bytes with a size cap and precise errors, and written back.

Headers keep their order and repeats (Via and Record-Route must go back as they came); compact forms
(`v`, `i`, `f`, ...) are read under their full names. Nothing here knows dialogs or transactions.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

#: larger messages are refused: an INVITE with its SDP is a few KiB; a 64 KiB datagram is an attack
MAX_MESSAGE_BYTES = 16 * 1024
MAX_HEADERS = 100
SIP_VERSION = "SIP/2.0"
#: RFC 3261 §8.1.1.7: branches starting with this cookie identify transactions by themselves
BRANCH_COOKIE = "z9hG4bK"

COMPACT = {"v": "via", "i": "call-id", "f": "from", "t": "to", "m": "contact", "l": "content-length",
           "c": "content-type", "k": "supported", "s": "subject", "e": "content-encoding", "o": "event",
           "r": "refer-to", "b": "referred-by", "u": "allow-events"}
#: what every request must carry before we can answer it at all (RFC 3261 §8.1.1)
REQUIRED = ("via", "call-id", "cseq", "from", "to")
TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
REASONS = {100: "Trying", 180: "Ringing", 200: "OK", 202: "Accepted", 400: "Bad Request", 403: "Forbidden",
           415: "Unsupported Media Type", 481: "Call/Transaction Does Not Exist", 486: "Busy Here",
           487: "Request Terminated", 488: "Not Acceptable Here", 500: "Server Internal Error",
           501: "Not Implemented", 503: "Service Unavailable", 513: "Message Too Large"}


class SipParseError(ValueError):
    """The bytes are not a SIP message we can use; `message` is what was parsed before the fault, if
    enough to answer 400 (a request line and a Via), else None: the datagram is dropped."""

    def __init__(self, reason: str, message: Request | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.message = message


@dataclass(slots=True)
class Message:
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def get(self, name: str) -> str | None:
        """The first value of header `name` (any case, compact or full)."""
        key = name.lower()
        return next((value for hname, value in self.headers if hname.lower() == key), None)

    def all(self, name: str) -> list[str]:
        key = name.lower()
        return [value for hname, value in self.headers if hname.lower() == key]

    @property
    def call_id(self) -> str:
        return self.get("Call-ID") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        number, _, method = (self.get("CSeq") or "").partition(" ")
        return int(number), method.strip().upper()

    @property
    def branch(self) -> str:
        """The top Via's branch: with the magic cookie it names the transaction."""
        return param(first_value(self.get("Via") or ""), "branch") or ""

    def head(self) -> str:
        raise NotImplementedError

    def encode(self) -> bytes:
        lines = [self.head()]
        lines += [f"{name}: {value}" for name, value in self.headers if name.lower() != "content-length"]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


@dataclass(slots=True)
class Request(Message):
    method: str = ""
    uri: str = ""

    def head(self) -> str:
        return f"{self.method} {self.uri} {SIP_VERSION}"


@dataclass(slots=True)
class Response(Message):
    status: int = 0
    reason: str = ""

    def head(self) -> str:
        return f"{SIP_VERSION} {self.status} {self.reason}"


def first_value(value: str) -> str:
    """The first of comma-separated header values (Via may fold several into one line)."""
    depth, quoted = 0, False
    for i, ch in enumerate(value):
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            depth += 1
        elif not quoted and ch == ">":
            depth -= 1
        elif not quoted and depth == 0 and ch == ",":
            return value[:i].strip()
    return value.strip()


def param(value: str, name: str) -> str | None:
    """A `;name=value` parameter of a header value, outside its `<URI>`."""
    outside = value.rsplit(">", 1)[-1] if "<" in value else value
    for part in outside.split(";")[1:]:
        key, _, val = part.partition("=")
        if key.strip().lower() == name:
            return val.strip()
    return None


def uri_of(value: str) -> str:
    """The URI inside a From/To/Contact value: `"Bob" <sip:b@h>;tag=1` -> `sip:b@h`."""
    if "<" in value:
        return value.split("<", 1)[1].split(">", 1)[0].strip()
    return value.split(";", 1)[0].strip()


def user_of(uri: str) -> str | None:
    """The user part of a SIP URI (`sip:+1555@host;user=phone` -> `+1555`), None without one."""
    rest = uri.split(":", 1)[1] if ":" in uri else uri
    user = rest.split("@", 1)[0] if "@" in rest else ""
    return user.split(";", 1)[0] or None


def parse(data: bytes) -> Request | Response:
    """One SIP message from a datagram (or a stream's framed message).

    Raises:
        SipParseError: over MAX_MESSAGE_BYTES, not UTF-8, a bad start line or header, a required
            header missing, or a body shorter than its Content-Length.
    """
    if len(data) > MAX_MESSAGE_BYTES:
        raise SipParseError(f"{len(data)} bytes, over the {MAX_MESSAGE_BYTES}-byte limit")
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
    try:
        text = head.decode()
    except UnicodeDecodeError:
        raise SipParseError("the header is not UTF-8") from None
    lines = unfold(text.lstrip("\r\n").splitlines())
    if not lines:
        raise SipParseError("empty message")
    message = start_line(lines[0])
    if len(lines) - 1 > MAX_HEADERS:
        raise SipParseError(f"more than {MAX_HEADERS} headers")
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not TOKEN.fullmatch(name):
            raise SipParseError(f"bad header line {line[:40]!r}", answerable(message))
        message.headers.append((full_name(name), value.strip()))
    message.body = body_of(message, body)
    check(message)
    return message


def unfold(lines: list[str]) -> list[str]:
    """Header lines with continuation lines (leading whitespace) joined to the line they continue."""
    out: list[str] = []
    for line in lines:
        if line[:1] in (" ", "\t") and out:
            out[-1] += " " + line.strip()
        else:
            out.append(line)
    return out


def start_line(line: str) -> Request | Response:
    parts = line.split(" ", 2)
    if len(parts) == 3 and parts[0] == SIP_VERSION:
        if not (parts[1].isdigit() and len(parts[1]) == 3):
            raise SipParseError(f"bad status line {line[:60]!r}")
        return Response(status=int(parts[1]), reason=parts[2])
    if len(parts) == 3 and parts[2] == SIP_VERSION and TOKEN.fullmatch(parts[0]) and ":" in parts[1]:
        return Request(method=parts[0].upper(), uri=parts[1])
    raise SipParseError(f"not a SIP start line: {line[:60]!r}")


def full_name(name: str) -> str:
    """Compact header names under their full name, written the usual way (Call-ID, CSeq, Via)."""
    lower = COMPACT.get(name.lower(), name.lower())
    special = {"call-id": "Call-ID", "cseq": "CSeq", "www-authenticate": "WWW-Authenticate"}
    return special.get(lower, "-".join(part.capitalize() for part in lower.split("-")))


def answerable(message: Request | Response) -> Request | None:
    """A request we can answer 400 to: it has a Via for the answer to follow."""
    return message if isinstance(message, Request) and message.get("Via") else None


def body_of(message: Request | Response, body: bytes) -> bytes:
    length = message.get("Content-Length")
    if length is None:
        return body  # UDP allows leaving it out (RFC 3261 §18.3)
    if not length.isdigit():
        raise SipParseError(f"bad Content-Length {length[:20]!r}", answerable(message))
    if int(length) > len(body):
        raise SipParseError(f"body of {len(body)} bytes, Content-Length says {length}", answerable(message))
    return body[:int(length)]


def check(message: Request | Response) -> None:
    missing = [name for name in REQUIRED if message.get(name) is None]
    if missing:
        raise SipParseError(f"missing {', '.join(full_name(m) for m in missing)}", answerable(message))
    number, _, method = (message.get("CSeq") or "").partition(" ")
    if not number.strip().isdigit() or int(number) >= 2**31 or not TOKEN.fullmatch(method.strip()):
        raise SipParseError(f"bad CSeq {(message.get('CSeq') or '')[:40]!r}", answerable(message))
    if isinstance(message, Request) and method.strip().upper() != message.method:
        raise SipParseError("CSeq method differs from the request's", answerable(message))


def response(request: Request, status: int, headers: list[tuple[str, str]] | None = None,
             body: bytes = b"", to_tag: str | None = None, reason: str | None = None) -> Response:
    """The answer to `request` (RFC 3261 §8.2.6): its Via, From, Call-ID and CSeq copied, To given our
    tag when it has none yet (not on 100 Trying)."""
    to = request.get("To") or ""
    if to_tag and status > 100 and param(to, "tag") is None:
        to = f"{to};tag={to_tag}"
    copied = [("Via", via) for via in request.all("Via")]
    copied += [("From", request.get("From") or ""), ("To", to), ("Call-ID", request.call_id),
               ("CSeq", request.get("CSeq") or "")]
    return Response(headers=copied + (headers or []), body=body, status=status,
                    reason=reason or REASONS.get(status, "Unknown"))


def new_tag() -> str:
    return secrets.token_hex(6)


def new_branch() -> str:
    return BRANCH_COOKIE + secrets.token_hex(8)
