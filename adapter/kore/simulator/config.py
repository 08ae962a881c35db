"""The simulated Kore.ai app and channel: credentials, bot id, sync/async, polling, limits."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Literal

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_private_key

from adapter.config_reader import Secret
from adapter.kore.settings import KoreSettings

DEFAULT_CLIENT_ID = "cs-simulator"
DEFAULT_BOT_ID = "st-simulator"


def generate_secret() -> Secret:
    """A throwaway client secret, long enough for HS512 (64 bytes)."""
    return Secret(secrets.token_urlsafe(48))


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """One simulated bot's Webhook channel, configured as in Kore's channel screen."""

    client_secret: Secret  # HS256/HS512 key
    client_id: str = DEFAULT_CLIENT_ID
    bot_id: str = DEFAULT_BOT_ID
    algorithm: str = "HS256"
    public_key_pem: str | None = None  # RS256/RS512: the app's public key
    enforce_jti: bool = False
    mode: Literal["sync", "async"] = "sync"
    polling: bool = True  # "Enable the Polling for Webhook v2" (on by default, §4.3)
    post_url: str | None = None  # async mode: where replies are POSTed
    access_token: Secret | None = None  # async mode: sent as `Authorization: Bearer` to post_url
    allow_anonymous: bool = True  # False: unknown from.id → 412
    registered_users: frozenset[str] = frozenset()
    rate_limit_per_minute: int = 60  # per user (§6.3)
    sync_timeout_s: float = 15.0  # Kore answers 504 after this (§6.2)
    secret_generated: bool = False  # the secret is the simulator's own, safe to print

    @classmethod
    def from_settings(cls, kore: KoreSettings, *, post_url: str | None = None) -> SimulatorConfig:
        """A simulator for the app in `kore`, so its tokens validate; missing credentials are generated."""
        public_key = None
        if kore.algorithm.startswith("RS") and kore.private_key is not None:
            key = load_pem_private_key(kore.private_key.reveal().encode(), password=None)
            public_pem = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
            public_key = public_pem.decode()
        secret = kore.client_secret
        return cls(
            client_secret=secret or generate_secret(),
            client_id=kore.client_id or DEFAULT_CLIENT_ID,
            bot_id=kore.bot_id or DEFAULT_BOT_ID,
            algorithm=kore.algorithm if public_key or kore.algorithm.startswith("HS") else "HS256",
            public_key_pem=public_key,
            enforce_jti=kore.enforce_jti,
            mode=kore.mode,
            post_url=post_url,
            access_token=kore.callback_token,
            secret_generated=secret is None,
        )

    @property
    def verification_key(self) -> str:
        return self.public_key_pem if self.algorithm.startswith("RS") and self.public_key_pem \
            else self.client_secret.reveal()
