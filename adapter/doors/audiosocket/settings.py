"""AudioSocket door settings: where its TCP listener binds, who may connect, and the audio rate.

AudioSocket has no authentication of its own (specs/telephony.md §6.1): the listener binds to loopback
by default, and KORE_VOICE_AUDIOSOCKET_ALLOW limits the peers further when it must bind wider.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from aiohttp import web

from adapter.config_reader import ConfigError, Reader

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: the audio rates the door takes, each with its frame kind (0x10 is what the AudioSocket() app sends)
RATES = ("8000", "16000")


@dataclass(frozen=True, slots=True)
class AudioSocketSettings:
    port: int | None = None  # None: no listener
    host: str = "127.0.0.1"
    allow: tuple[IpNetwork, ...] = ()  # peers allowed to connect; empty: any that reach the port
    # 16000 only with the channel driver and `c(slin16)`: its frames are kind 0x12, not 0x10
    rate: int = 8000

    def allows(self, address: str) -> bool:
        """Whether a peer at `address` may connect (an IPv4-mapped IPv6 address counts as its IPv4 one)."""
        if not self.allow:
            return True
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.allow)

    @classmethod
    def read(cls, r: Reader) -> AudioSocketSettings:
        port = r.integer("KORE_VOICE_AUDIOSOCKET_PORT", 0) if r.text("KORE_VOICE_AUDIOSOCKET_PORT") else None
        if port is not None and port > 65535:
            raise ConfigError(f"KORE_VOICE_AUDIOSOCKET_PORT must be at most 65535, not {port}")
        return cls(port=port, host=r.text("KORE_VOICE_AUDIOSOCKET_HOST", "127.0.0.1") or "127.0.0.1",
                   allow=networks(r.text("KORE_VOICE_AUDIOSOCKET_ALLOW") or ""),
                   rate=int(r.choice("KORE_VOICE_AUDIOSOCKET_RATE", RATES, "8000")))


def networks(text: str) -> tuple[IpNetwork, ...]:
    """Comma- or space-separated CIDRs (a bare address is its own /32 or /128)."""
    found = []
    for item in text.replace(",", " ").split():
        try:
            found.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(f"KORE_VOICE_AUDIOSOCKET_ALLOW: {item!r} is not an address or CIDR") from None
    return tuple(found)


AUDIOSOCKET = web.AppKey("audiosocket_settings", AudioSocketSettings)
