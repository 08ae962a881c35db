"""Phone systems' side of our doors, for tests, benchmarks and trying a door without a phone: each peer
behaves as its phone system does on the wire (its spec in shared specs/telephony.md), in real time.

One module per phone system (`twilio_media`: Twilio Media Streams; `audiosocket_peer`: Asterisk's
AudioSocket; `vonage_peer`: Vonage's webhooks and socket; `sip_peer`: a SIP trunk's INVITE and RTP), on
what they all share: `line_peer` (the caller's line, the timeline, markers echoed once played, `until`)
and `socket_peer` (a WebSocket's reading and closing). Nothing in the service imports these: they stand
where the phone network would be.
"""
