"""`X-Twilio-Signature` on every Twilio webhook, checked with the official `twilio` library.

Twilio signs the URL it was configured with (scheme, host, path, query) plus the sorted form
parameters (specs/telephony.md §1.5), so the hard part is rebuilding that URL behind proxies:
KORE_VOICE_PUBLIC_URL + the raw path, else X-Forwarded-Proto/Host when trusted, else what we saw.
The library tries the port variants (:443 / :80) and the `bodySHA256` scheme for JSON bodies.
A JSON body without `bodySHA256` in its URL cannot be checked: it is refused (400) before the library
sees it.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from aiohttp import web
from multidict import MultiDict, MultiDictProxy
from twilio.request_validator import (
    HMAC_SHA1,
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)

from adapter.api_errors import ApiError
from adapter.app_state import SERVICE
from adapter.doors.twilio.settings import TWILIO, TwilioSettings
from adapter.json_body import load_json

# A voice webhook is a few hundred bytes of form; nothing Twilio sends us comes near this.
MAX_WEBHOOK_BYTES = 64 * 1024
FORM = "application/x-www-form-urlencoded"


def signed_url(request: web.Request, public_url: str | None, trust_forwarded: bool) -> str:
    """The URL Twilio requested, as Twilio saw it."""
    if public_url:
        return public_url.rstrip("/") + request.raw_path
    scheme, host = request.scheme, request.host
    if trust_forwarded:
        scheme = request.headers.get("X-Forwarded-Proto", scheme).split(",")[0].strip() or scheme
        host = request.headers.get("X-Forwarded-Host", host).split(",")[0].strip() or host
    return f"{scheme}://{host}{request.raw_path}"


def base_url(request: web.Request) -> str:
    """The service as Twilio reaches it: KORE_VOICE_PUBLIC_URL, else the origin Twilio called."""
    app = request.app
    return signed_url(request, app[SERVICE].public_url, app[TWILIO].trust_forwarded).removesuffix(request.raw_path)


def _signing_key(settings: TwilioSettings, settings_header: str | None) -> tuple[str, str]:
    """The secret and algorithm a request was signed with: the Auth Token (HMAC-SHA1), or a Webhook
    Rule's SharedKey when the request says so."""
    algorithm = get_signature_algorithm(settings_header).upper()
    if algorithm == HMAC_SHA1:
        assert settings.auth_token is not None
        return settings.auth_token.reveal(), algorithm
    key_id = next((v.strip() for k, _, v in (p.partition("=") for p in (settings_header or "").split(","))
                   if k.strip() == "key"), "")
    if settings.shared_key is None or (settings.shared_key_id and key_id != settings.shared_key_id):
        raise ApiError(403, "bad_signature", f"the request is signed with {algorithm} by a shared key this "
                       "service does not have (set TWILIO_SHARED_KEY and TWILIO_SHARED_KEY_ID)")
    return settings.shared_key.reveal(), algorithm


async def _params(request: web.Request) -> tuple[MultiDictProxy[str] | str, MultiDictProxy[str]]:
    """What the signature covers besides the URL (the form, or the raw JSON body) and the parameters."""
    if request.method == "GET":
        return MultiDictProxy(MultiDict()), request.query
    if request.content_length is not None and request.content_length > MAX_WEBHOOK_BYTES:
        raise ApiError(413, "too_large", f"a Twilio webhook body is at most {MAX_WEBHOOK_BYTES} bytes")
    body = bytearray()
    async for chunk in request.content.iter_any():  # a chunked body has no length to check up front
        body += chunk
        if len(body) > MAX_WEBHOOK_BYTES:
            raise ApiError(413, "too_large", f"a Twilio webhook body is at most {MAX_WEBHOOK_BYTES} bytes")
    return parse_body(request.content_type, "bodySHA256" in request.query, bytes(body))


def parse_body(content_type: str, has_body_sha256: bool,
               body: bytes) -> tuple[MultiDictProxy[str] | str, MultiDictProxy[str]]:
    """A POST body's signed part (the form, or the raw JSON text) and its parameters.

    Raises:
        ApiError: 400 JSON without `bodySHA256` in the URL (nothing to check it by) or not JSON;
            415 neither a form nor JSON.
    """
    text = body.decode("utf-8", "replace")
    if content_type == FORM:
        form = MultiDictProxy(MultiDict(parse_qsl(text, keep_blank_values=True)))
        return form, form
    if content_type == "application/json":
        if not has_body_sha256:
            raise ApiError(400, "bad_request", "a JSON webhook is signed with bodySHA256 in its URL, and this one "
                           f"has none; Twilio webhooks are otherwise {FORM}")
        try:
            value = load_json(body)
        except ValueError as exc:  # a JsonBodyError, or an integer too long to convert
            raise ApiError(400, "bad_request", f"the body is not JSON we read: {exc}") from None
        scalars = value.items() if isinstance(value, dict) else ()
        return text, MultiDictProxy(MultiDict((k, str(v)) for k, v in scalars if not isinstance(v, dict | list)))
    raise ApiError(415, "unsupported_media", f"Twilio webhooks are {FORM} (or JSON with bodySHA256), "
                   f"not {content_type[:80]!r}")


async def verified_params(request: web.Request, settings: TwilioSettings,
                          public_url: str | None) -> MultiDictProxy[str]:
    """The webhook's parameters, once its signature holds.

    Raises:
        ApiError: 503 no Auth Token configured; 403 the signature is missing or wrong; 413 / 415 / 400
            for a body no Twilio webhook has.
    """
    if settings.auth_token is None:
        raise ApiError(503, "twilio_not_configured", "the Twilio door needs TWILIO_AUTH_TOKEN to check signatures")
    signature = request.headers.get(SIGNATURE_HEADER)
    if not signature:
        raise ApiError(403, "bad_signature", f"missing {SIGNATURE_HEADER}")
    signed, params = await _params(request)
    secret, algorithm = _signing_key(settings, request.headers.get(SIGNATURE_SETTINGS_HEADER))
    url = signed_url(request, public_url, settings.trust_forwarded)
    if not RequestValidator(secret).validate(url, signed, signature, algorithm=algorithm):
        raise ApiError(403, "bad_signature", f"{SIGNATURE_HEADER} does not match this request as sent to "
                       f"{url.split('?')[0]} (is KORE_VOICE_PUBLIC_URL the URL Twilio calls?)")
    return params
