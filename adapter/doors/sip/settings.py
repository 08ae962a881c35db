"""SIP door settings: where the user agent listens, what address it advertises, its RTP ports and
which trunk peers may call.

Unset `KORE_VOICE_SIP_PORT` means no SIP door. The allow-list defaults to loopback and private
networks: a PBX or SBC next to the service may call, the open internet may not until it is listed.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from aiohttp import web

from adapter.config_reader import ConfigError, Reader

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_ALLOW = "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"
DEFAULT_RTP_PORTS = "20000-20999"


def networks(key: str, raw: str) -> tuple[Network, ...]:
    """`10.0.0.0/8, 192.0.2.7` as networks (a bare address is a /32 or /128)."""
    try:
        return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(f"{key} must be CIDRs separated by commas: {exc}") from None


def port_range(key: str, raw: str) -> range:
    """`20000-20999` as a range of ports (both ends included)."""
    low, sep, high = raw.partition("-")
    try:
        first, last = int(low), int(high if sep else low)
    except ValueError:
        raise ConfigError(f"{key} must be a port range like 20000-20999, not {raw!r}") from None
    if not 1024 <= first <= last <= 65535:
        raise ConfigError(f"{key} must lie within 1024-65535 with the low port first, not {raw!r}")
    return range(first, last + 1)


@dataclass(frozen=True, slots=True)
class SipSettings:
    port: int | None = None  # None: no SIP door; 0 picks a free port (tests)
    host: str = "0.0.0.0"
    # What Contact and SDP advertise (NAT: the public address); None: the address the peer reached.
    public_address: str | None = None
    rtp_ports: range = port_range("KORE_VOICE_RTP_PORTS", DEFAULT_RTP_PORTS)
    allow: tuple[Network, ...] = networks("KORE_VOICE_SIP_ALLOW", DEFAULT_ALLOW)

    @classmethod
    def read(cls, r: Reader) -> SipSettings:
        port = r.text("KORE_VOICE_SIP_PORT")
        return cls(
            port=r.integer("KORE_VOICE_SIP_PORT", 0) if port is not None else None,
            host=r.text("KORE_VOICE_SIP_HOST", "0.0.0.0") or "0.0.0.0",
            public_address=r.text("KORE_VOICE_SIP_PUBLIC_ADDRESS"),
            rtp_ports=port_range("KORE_VOICE_RTP_PORTS", r.text("KORE_VOICE_RTP_PORTS", DEFAULT_RTP_PORTS) or ""),
            allow=networks("KORE_VOICE_SIP_ALLOW", r.text("KORE_VOICE_SIP_ALLOW", DEFAULT_ALLOW) or ""),
        )

    def allows(self, address: str) -> bool:
        """The trunk peer at `address` may send us requests."""
        try:
            ip = ipaddress.ip_address(address.split("%")[0])
        except ValueError:
            return False
        return any(ip in net for net in self.allow)


SIP = web.AppKey("sip_settings", SipSettings)
