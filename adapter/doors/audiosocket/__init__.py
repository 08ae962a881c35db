"""The Asterisk AudioSocket door: calls over raw TCP from Asterisk's `AudioSocket()` application or
`AudioSocket/` channel driver (settings.py, frames.py, numbers.py, door.py)."""
