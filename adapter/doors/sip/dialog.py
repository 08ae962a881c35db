"""One SIP dialog as the answering side holds it (RFC 3261 §12.1.1): the ids both sides agreed, where
in-dialog requests go (the caller's Contact, through its Record-Route set), and our CSeq.

Requests we start (BYE, REFER) are built here; responses and transactions live elsewhere.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from adapter.doors.sip.message import Request, new_branch, param, uri_of

Address = tuple[str, int]


@dataclass(slots=True)
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local: str  # the INVITE's To URI: who we are in this dialog
    remote: str  # the INVITE's From header value, without its tag
    remote_target: str  # the caller's Contact URI
    route_set: list[str] = field(default_factory=list)  # Record-Route, in order (§12.1.1)
    source: Address = ("", 0)  # where the INVITE came from
    via: str = ""  # our Via's sent-by (`host:port`) and transport, e.g. `SIP/2.0/UDP 192.0.2.1:5060`
    local_cseq: int = 1
    remote_cseq: int = 0

    @classmethod
    def from_invite(cls, invite: Request, local_tag: str, source: Address, via: str) -> Dialog:
        from_value = invite.get("From") or ""
        return cls(
            call_id=invite.call_id,
            local_tag=local_tag,
            remote_tag=param(from_value, "tag") or "",
            local=uri_of(invite.get("To") or ""),
            remote=from_value.split(";tag=")[0],
            remote_target=uri_of(invite.get("Contact") or from_value),
            route_set=[r.strip() for v in invite.all("Record-Route") for r in v.split(",")],
            source=source,
            via=via,
            remote_cseq=invite.cseq[0],
        )

    def request(self, method: str, headers: list[tuple[str, str]] | None = None, body: bytes = b"") -> Request:
        """A new in-dialog request from us, with the next CSeq and a fresh branch."""
        self.local_cseq += 1
        base = [("Via", f"{self.via};branch={new_branch()};rport"), ("Max-Forwards", "70"),
                ("From", f"<{self.local}>;tag={self.local_tag}"), ("To", f"{self.remote};tag={self.remote_tag}"),
                ("Call-ID", self.call_id), ("CSeq", f"{self.local_cseq} {method}")]
        base += [("Route", route) for route in self.route_set]
        return Request(method=method, uri=self.remote_target, headers=base + (headers or []), body=body)

    def next_hop(self) -> Address:
        """Where our in-dialog requests go: the first route's or the Contact's address when it is an IP
        literal, else where the INVITE came from (a peer behind NAT may name a host we cannot reach)."""
        uri = uri_of(self.route_set[0]) if self.route_set else self.remote_target
        host, port = host_port(uri)
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return self.source
        return host, port or 5060


def host_port(uri: str) -> tuple[str, int | None]:
    """`sip:user@192.0.2.1:5062;transport=udp` -> ("192.0.2.1", 5062); `[::1]:5060` for IPv6."""
    rest = uri.split(":", 1)[1] if ":" in uri else uri
    hostport = rest.split("@", 1)[-1].split(";", 1)[0].split("?", 1)[0]
    if hostport.startswith("["):
        host, _, tail = hostport[1:].partition("]")
        port = tail.removeprefix(":")
    else:
        host, _, port = hostport.partition(":")
    return host, int(port) if port.isdigit() else None
