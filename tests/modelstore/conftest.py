"""Shared fixtures for the model-store tests: a fake model zip and a port nobody listens on."""

from __future__ import annotations

import socket

import pytest
from fake_model_host import model_zip


@pytest.fixture(scope="session")
def zip_bytes() -> bytes:
    return model_zip()


@pytest.fixture
def closed_port() -> int:
    """A loopback port that was just free: connecting to it is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
