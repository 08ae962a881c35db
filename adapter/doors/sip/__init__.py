"""The SIP trunk door: a SIP user agent server (UDP and TCP) with G.711 RTP media and RFC 4733 keys, so any
PBX, SBC or carrier can send calls straight to the adapter (adapter/doors/sip/README or README.md)."""
