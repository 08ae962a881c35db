"""Phone systems' side of our doors, for tests, benchmarks and trying a door without a phone: each peer
behaves as its phone system does on the wire (its spec in shared specs/telephony.md), in real time.

One module per phone system (`twilio_media`: Twilio Media Streams). Nothing in the service imports
these: they stand where the phone network would be.
"""
