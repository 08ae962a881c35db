"""Kore.ai settings: webhook URL, app credentials, JWT algorithm, sync/async mode, turn deadline.

No `KORE_WEBHOOK_URL` means "no real bot": the service runs the built-in simulator in-process and
talks to it through `KoreSettings.for_simulator(...)`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from adapter.config_reader import ConfigError, Reader, Secret
from adapter.kore.webhook_url import Version, WebhookUrl

ALGORITHMS = ("HS256", "HS512", "RS256", "RS512")
Mode = Literal["sync", "async"]

# Kore times a sync request out after 15 s (specs/kore-webhook.md §6.2); a turn must end before.
MAX_TURN_DEADLINE_S = 14.0
# The async receiver's path token must not be guessable (§5.2: Kore documents no callback auth).
MIN_CALLBACK_TOKEN_CHARS = 16
# The bot's answers are a few kilobytes; a bigger one is a fault, never read whole into memory.
DEFAULT_MAX_ANSWER_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class KoreSettings:
    """How to reach one Kore.ai bot through its Webhook channel; `webhook is None` = embedded simulator."""

    webhook: WebhookUrl | None = None
    client_id: str | None = None
    client_secret: Secret | None = None
    private_key: Secret | None = None  # PEM text, for RS256/RS512
    algorithm: str = "HS256"
    mode: Mode = "sync"
    callback_token: Secret | None = None
    bot_id: str = ""  # to.id; defaults to the stream id in the URL
    enforce_jti: bool = False
    turn_deadline_s: float = 12.0
    welcome_text: str = "Hi"  # v1 has no ON_CONNECT event: the seed's `session.new: true` + "Hi"
    version: Version | None = None  # KORE_WEBHOOK_VERSION; None = inferred from the URL
    max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES  # a bigger answer from the bot is an error

    @property
    def embedded(self) -> bool:
        """True when no bot URL is configured and the built-in simulator plays the bot."""
        return self.webhook is None

    @classmethod
    def read(cls, r: Reader) -> KoreSettings:
        """Read and cross-check the KORE_* settings; raises `ConfigError` naming the setting."""
        forced = r.choice("KORE_WEBHOOK_VERSION", ("auto", "v1", "v2"), "auto")
        version = None if forced == "auto" else cast(Version, forced)
        algorithm = (r.text("KORE_JWT_ALGORITHM") or "HS256").upper()
        if algorithm not in ALGORITHMS:
            raise ConfigError(f"KORE_JWT_ALGORITHM must be one of {', '.join(ALGORITHMS)}, not {algorithm!r}")
        mode = cast(Mode, r.choice("KORE_MODE", ("sync", "async"), "sync"))
        callback_token = r.secret("KORE_CALLBACK_TOKEN")
        if mode == "async" and callback_token is None:
            raise ConfigError("KORE_CALLBACK_TOKEN is required when KORE_MODE=async "
                              "(it protects the POST_URL receiver)")
        if callback_token is not None and len(callback_token.reveal()) < MIN_CALLBACK_TOKEN_CHARS:
            raise ConfigError(f"KORE_CALLBACK_TOKEN must be at least {MIN_CALLBACK_TOKEN_CHARS} characters")
        deadline = r.number("KORE_TURN_DEADLINE_SECONDS", 12.0, minimum=1.0)
        if deadline > MAX_TURN_DEADLINE_S:
            raise ConfigError(f"KORE_TURN_DEADLINE_SECONDS must be at most {MAX_TURN_DEADLINE_S:g} "
                              "(Kore.ai times sync requests out at 15 s)")
        webhook = _read_webhook(r, version)
        settings = cls(
            webhook=webhook,
            client_id=r.text("KORE_CLIENT_ID"),
            client_secret=r.secret("KORE_CLIENT_SECRET"),
            private_key=_read_private_key(r, algorithm),
            algorithm=algorithm,
            mode=mode,
            callback_token=callback_token,
            bot_id=r.text("KORE_BOT_ID") or (webhook.bot_id if webhook else ""),
            enforce_jti=r.flag("KORE_ENFORCE_JTI"),
            turn_deadline_s=deadline,
            welcome_text=r.text("KORE_WELCOME_TEXT") or "Hi",
            version=version,
            max_answer_bytes=r.integer("KORE_MAX_ANSWER_BYTES", DEFAULT_MAX_ANSWER_BYTES, minimum=1024),
        )
        if webhook is not None:
            settings.check_credentials()
        return settings

    def check_credentials(self) -> None:
        """Raise `ConfigError` unless a token can be signed (client id plus the algorithm's key)."""
        if not self.client_id:
            raise ConfigError("KORE_CLIENT_ID is required (the client id of the app bound to the channel)")
        if self.algorithm.startswith("HS") and self.client_secret is None:
            raise ConfigError(f"KORE_CLIENT_SECRET is required for KORE_JWT_ALGORITHM={self.algorithm}")
        if self.algorithm.startswith("RS") and self.private_key is None:
            raise ConfigError(f"KORE_PRIVATE_KEY_FILE is required for KORE_JWT_ALGORITHM={self.algorithm}")

    def for_simulator(self, base_url: str, client_id: str, client_secret: Secret,
                      bot_id: str) -> KoreSettings:
        """These settings aimed at a simulator listening on `base_url` (e.g. http://127.0.0.1:PORT)."""
        webhook = WebhookUrl(base_url.rstrip("/"), bot_id, None, self.version or "v2")
        return dataclasses.replace(self, webhook=webhook, client_id=client_id, client_secret=client_secret,
                                   private_key=None, algorithm="HS256", bot_id=bot_id)


def _read_webhook(r: Reader, version: Version | None) -> WebhookUrl | None:
    url = r.text("KORE_WEBHOOK_URL")
    if url is None:
        return None
    try:
        return WebhookUrl.parse(url, version)
    except ValueError as exc:
        raise ConfigError(f"KORE_WEBHOOK_URL {exc}") from None


def _read_private_key(r: Reader, algorithm: str) -> Secret | None:
    path: Path | None = r.path("KORE_PRIVATE_KEY_FILE")
    if path is None:
        return None
    if algorithm.startswith("HS"):
        raise ConfigError(f"KORE_PRIVATE_KEY_FILE is set but KORE_JWT_ALGORITHM is {algorithm}; "
                          "use RS256 or RS512 with a private key")
    try:
        pem = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not a text file"
        raise ConfigError(f"KORE_PRIVATE_KEY_FILE {path}: {reason}") from None
    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, RSAPrivateKey):
        raise ConfigError(f"KORE_PRIVATE_KEY_FILE {path} is not an unencrypted PEM RSA private key")
    return Secret(pem)
