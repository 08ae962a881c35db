"""Vonage settings: the signature secret that signs webhooks, and the application credentials that let us
hang a call up through Vonage's REST API.

Without `VONAGE_SIGNATURE_SECRET` webhooks are taken unsigned (Vonage signs Voice webhooks only once
signed callbacks are switched on for the application). Without `VONAGE_APPLICATION_ID` and
`VONAGE_PRIVATE_KEY_FILE` the bot's hang-up only closes the socket, which Vonage reports as
`disconnected` and then continues the NCCO (nothing follows our `connect`, so the call ends).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from adapter.config_reader import ConfigError, Reader, Secret

API_URL = "https://api.nexmo.com"


@dataclass(frozen=True, slots=True)
class VonageSettings:
    signature_secret: Secret | None = None  # HS256 key of the webhooks' Authorization JWT
    application_id: str | None = None  # with the private key: RS256 application JWTs for the REST API
    private_key_file: Path | None = None
    api_url: str = API_URL  # where `PUT /v1/calls/{uuid}` goes (a local fake in tests)

    @classmethod
    def read(cls, r: Reader) -> VonageSettings:
        application_id, key_file = r.text("VONAGE_APPLICATION_ID"), r.path("VONAGE_PRIVATE_KEY_FILE")
        if (application_id is None) != (key_file is None):
            raise ConfigError("VONAGE_APPLICATION_ID and VONAGE_PRIVATE_KEY_FILE go together: set both or neither")
        api_url = r.text("VONAGE_API_URL", API_URL) or API_URL
        if not api_url.startswith(("http://", "https://")):
            raise ConfigError(f"VONAGE_API_URL must start with http:// or https://, not {api_url!r}")
        return cls(signature_secret=r.secret("VONAGE_SIGNATURE_SECRET"), application_id=application_id,
                   private_key_file=key_file, api_url=api_url.rstrip("/"))


VONAGE = web.AppKey("vonage_settings", VonageSettings)
