"""SDP offer/answer for one audio stream (RFC 4566, RFC 3264): read a caller's offer, answer with
G.711 only from what was offered (PCMU preferred over PCMA), telephone-event under the offer's own
payload type, 20 ms packets, and the hold direction mirrored.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import NamedTuple

#: static payload types of RFC 3551, used when an offer lists them without an rtpmap
STATIC = {0: "PCMU", 8: "PCMA"}
G711 = ("PCMU", "PCMA")  # in the order we prefer
TELEPHONE_EVENT = "TELEPHONE-EVENT"
#: the direction we answer for each direction offered (RFC 3264 §6.1)
ANSWER_DIRECTION = {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}


class SdpError(ValueError):
    """The offer cannot be answered: 488 Not Acceptable Here, with `reason` in the log."""


class MediaLine(NamedTuple):
    """One m= line of an offer, its fields in order: the answer has one for each, in the same order
    (RFC 3264 §6)."""

    kind: str
    port: int
    proto: str
    formats: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Offer:
    """What we use of an offer: where to send RTP, the codec, telephone-event's payload type (None:
    not offered, so keys must be heard in the audio) and the direction."""

    address: str
    port: int
    codec: str  # PCMU or PCMA
    payload_type: int
    event_type: int | None
    direction: str
    media: tuple[MediaLine, ...]  # every m= line, so the answer keeps their number and order
    audio_index: int


def parse_offer(body: bytes) -> Offer:
    """The audio stream of an SDP offer.

    Raises:
        SdpError: not SDP text, no audio stream, no address, or no G.711 among the audio's formats.
    """
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise SdpError("the SDP is not UTF-8") from None
    sections: list[list[tuple[str, str]]] = [[]]  # the session's lines, then each m= section's
    for line in text.splitlines():
        kind, eq, value = line.strip().partition("=")
        if eq and kind == "m":
            sections.append([])
        if eq:
            sections[-1].append((kind, value.strip()))
    media = [_media_line(section[0][1]) for section in sections[1:]]
    audio = next((i for i, m in enumerate(media) if m.kind == "audio" and m.port), None)
    if audio is None:
        raise SdpError("the offer has no audio stream")
    attributes = sections[audio + 1]
    maps = {}
    for kind, value in attributes:
        name, _, rest = value.partition(":")
        pt, _, encoding = rest.partition(" ")
        if kind == "a" and name == "rtpmap" and pt.isdigit():
            maps[int(pt)] = encoding.split("/")[0].upper()
    directions = [value for kind, value in attributes + sections[0] if kind == "a" and value in ANSWER_DIRECTION]
    address = _address(attributes) or _address(sections[0])
    return _audio_offer(media, audio, maps, address, directions[0] if directions else None)


def _media_line(value: str) -> MediaLine:
    parts = value.split()
    if len(parts) < 4 or not parts[1].split("/")[0].isdigit():
        raise SdpError(f"bad media line {value[:60]!r}")
    return MediaLine(parts[0], int(parts[1].split("/")[0]), parts[2], tuple(parts[3:]))


def _address(lines: list[tuple[str, str]]) -> str | None:
    """The c= address among `lines` (`IN IP4 192.0.2.1`), if any."""
    for kind, value in lines:
        parts = value.split()
        if kind == "c" and len(parts) == 3:
            return parts[2].split("/")[0]
    return None


def _audio_offer(media: list[MediaLine], audio: int, maps: dict[int, str], address: str | None,
                 direction: str | None) -> Offer:
    if not address:
        raise SdpError("the offer has no connection address for its audio")
    line = media[audio]
    names = {int(f): maps.get(int(f), STATIC.get(int(f), "")) for f in line.formats if f.isdigit()}
    codec = next((c for c in G711 if c in names.values()), None)
    if codec is None:
        raise SdpError(f"no G.711 (PCMU or PCMA) among the offered formats {' '.join(line.formats)[:60]}")
    payload_type = next(pt for pt, name in names.items() if name == codec)
    event_type = next((pt for pt, name in names.items() if name == TELEPHONE_EVENT), None)
    return Offer(address, line.port, codec, payload_type, event_type, direction or "sendrecv", tuple(media), audio)


def answer(offer: Offer, address: str, port: int, session_id: int | None = None, version: int = 1) -> bytes:
    """Our answer: the offer's codec (ours preferred) and telephone-event, on `address`:`port`;
    every other m= line refused with port 0. `version` rises with each re-answer in a dialog."""
    session_id = session_id if session_id is not None else secrets.randbelow(2**31)
    ip = "IP6" if ":" in address else "IP4"
    lines = ["v=0", f"o=kore-voice {session_id} {version} IN {ip} {address}", "s=kore-voice",
             f"c=IN {ip} {address}", "t=0 0"]
    for i, line in enumerate(offer.media):
        if i != offer.audio_index:
            lines.append(f"m={line.kind} 0 {line.proto} {line.formats[0]}")
            continue
        formats = [offer.payload_type] + ([offer.event_type] if offer.event_type is not None else [])
        lines.append(f"m=audio {port} RTP/AVP {' '.join(map(str, formats))}")
        lines.append(f"a=rtpmap:{offer.payload_type} {offer.codec}/8000")
        if offer.event_type is not None:
            lines += [f"a=rtpmap:{offer.event_type} telephone-event/8000", f"a=fmtp:{offer.event_type} 0-16"]
        lines += ["a=ptime:20", f"a={ANSWER_DIRECTION[offer.direction]}"]
    return ("\r\n".join(lines) + "\r\n").encode()
