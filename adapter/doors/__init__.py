"""Doors: each translates one wire protocol into conversation events and back (REST turns, streams, ...)."""
