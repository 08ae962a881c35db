"""The HTTP service's own settings: where it listens, who may call it, and how much one call may ask of it."""

from __future__ import annotations

from dataclasses import dataclass

from adapter.config_reader import ConfigError, Reader, Secret

LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """The HTTP service: where it listens, who may call it, and how much one call may ask of it."""

    host: str = "127.0.0.1"
    port: int = 8080
    api_key: Secret | None = None  # Bearer key for the /v1 doors; None: open
    public_url: str | None = None  # how clients reach us (behind a proxy), for absolute audio URLs
    turns_per_minute: int = 30  # per call; Kore.ai allows 60 requests a minute per user (specs §6.3)
    max_calls: int = 100  # live calls at once, all doors together
    call_idle_s: float = 300.0  # a request/response call nobody touches this long is hung up
    asr_processes: int | None = None  # recogniser worker processes; None: one per CPU for PocketSphinx
    max_connections: int = 1000  # open HTTP connections at once (then 503 and close); `serve` only
    header_timeout_s: float = 15.0  # to send a whole request head, from connecting or the previous answer
    body_timeout_s: float = 60.0  # to send a whole request body, from its head
    drain_s: float = 30.0  # after SIGTERM, live calls may go on this long before they are closed (`serve`)
    log_level: str = "info"  # the service log's threshold (`serve`)
    redis_url: Secret | None = None  # shared state for several instances; None: everything in this process
    session_ttl_s: float = 3600.0  # a call's stored state outlives its last change this long (Redis only)
    lease_s: float = 15.0  # an instance silent this long is dead: a survivor closes its calls (Redis only)

    @classmethod
    def read(cls, r: Reader) -> ServiceSettings:
        port = r.integer("KORE_VOICE_PORT", 8080)
        if port > 65535:
            raise ConfigError(f"KORE_VOICE_PORT must be at most 65535, not {port}")
        public_url = r.text("KORE_VOICE_PUBLIC_URL")
        if public_url is not None and not public_url.startswith(("http://", "https://")):
            raise ConfigError(f"KORE_VOICE_PUBLIC_URL must start with http:// or https://, not {public_url!r}")
        redis_url = r.secret("KORE_VOICE_REDIS_URL")  # a secret: it may hold Redis's password
        if redis_url is not None and not redis_url.reveal().startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError("KORE_VOICE_REDIS_URL must start with redis://, rediss:// or unix://")
        return cls(
            host=r.text("KORE_VOICE_HOST", "127.0.0.1") or "127.0.0.1",
            port=port,
            api_key=r.secret("KORE_VOICE_API_KEY"),
            public_url=public_url.rstrip("/") if public_url else None,
            turns_per_minute=r.integer("KORE_VOICE_TURNS_PER_MINUTE", 30, minimum=1),
            max_calls=r.integer("KORE_VOICE_MAX_CALLS", 100, minimum=1),
            call_idle_s=r.number("KORE_VOICE_CALL_IDLE_SECONDS", 300.0, minimum=1.0),
            asr_processes=None if (r.text("KORE_VOICE_ASR_PROCESSES") or "auto") == "auto"
            else r.integer("KORE_VOICE_ASR_PROCESSES", 0),
            max_connections=r.integer("KORE_VOICE_MAX_CONNECTIONS", 1000, minimum=1),
            header_timeout_s=r.number("KORE_VOICE_HEADER_TIMEOUT_SECONDS", 15.0, minimum=0.1),
            body_timeout_s=r.number("KORE_VOICE_BODY_TIMEOUT_SECONDS", 60.0, minimum=0.1),
            drain_s=r.number("KORE_VOICE_DRAIN_S", 30.0),
            log_level=r.choice("KORE_VOICE_LOG_LEVEL", LOG_LEVELS, "info"),
            redis_url=redis_url,
            session_ttl_s=r.number("KORE_VOICE_SESSION_TTL_S", 3600.0, minimum=60.0),
            lease_s=r.number("KORE_VOICE_LEASE_S", 15.0, minimum=1.0),
        )
