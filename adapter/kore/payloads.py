"""What we POST to the webhook: v1 (the seed's shape) and v2 (`message.type/val`, events), specs §3."""

from __future__ import annotations

from typing import Any

from adapter.calls.info import CallInfo, InputMeta
from adapter.kore.webhook_url import Version


class PayloadBuilder:
    """Builds request bodies for one bot and webhook version."""

    def __init__(self, version: Version, bot_id: str) -> None:
        self.version = version
        self.bot_id = bot_id

    def welcome(self, call: CallInfo, v1_text: str) -> dict[str, Any]:
        """Call start: v2 `ON_CONNECT` event; v1 has no events, so the seed's new-session "Hi" text."""
        if self.version == "v2":
            return self._v2(call, {"type": "event", "val": "ON_CONNECT"}, new=True, meta=None)
        return self._v1(call, v1_text, new=True, meta=None)

    def text(self, call: CallInfo, text: str, meta: InputMeta) -> dict[str, Any]:
        """The caller's speech or keys as plain text (seed: input "converted to plain text")."""
        if self.version == "v2":
            return self._v2(call, {"type": "text", "val": text}, new=False, meta=meta)
        return self._v1(call, text, new=False, meta=meta)

    def closure(self, call: CallInfo) -> dict[str, Any] | None:
        """Hang-up: v2 `SESSION_CLOSURE`; v1 has nothing to send (Kore ends idle sessions itself)."""
        if self.version == "v2":
            return {"session": {"new": False}, "message": {"type": "event", "val": "SESSION_CLOSURE"},
                    "from": {"id": call.user_id}, "to": {"id": self.bot_id}}
        return None

    def _v2(self, call: CallInfo, message: dict[str, Any], *, new: bool,
            meta: InputMeta | None) -> dict[str, Any]:
        body: dict[str, Any] = {"session": {"new": new}, "message": message, "from": _from(call),
                                "to": {"id": self.bot_id}}
        tags = _tags(call, meta)
        if tags:
            body["metaTags"] = tags
        body["customData"] = _custom_data(call, meta)
        return body

    def _v1(self, call: CallInfo, text: str, *, new: bool, meta: InputMeta | None) -> dict[str, Any]:
        body: dict[str, Any] = {"session": {"new": new}, "message": {"text": text, "attachments": []},
                                "from": _from(call),
                                "to": {"id": self.bot_id, "groupInfo": {"id": "", "name": ""}}}
        body.update(_tags(call, meta))  # v1 takes the tag lists at the top level (§3.1)
        body["customData"] = _custom_data(call, meta)
        return body


def _from(call: CallInfo) -> dict[str, Any]:
    return {"id": call.user_id, "userInfo": {"firstName": "", "lastName": "", "email": ""}}


def _custom_data(call: CallInfo, meta: InputMeta | None) -> dict[str, Any]:
    """Lands in `context.session.BotUserSession.lastMessage.customData` for the bot (§3.1)."""
    data: dict[str, Any] = {"ani": call.caller, "dnis": call.called, "door": call.door or None}
    if meta is not None:
        data.update(inputMode=meta.mode, asrConfidence=meta.confidence, dtmf=meta.keys)
    return {k: v for k, v in data.items() if v is not None}


def _tags(call: CallInfo, meta: InputMeta | None) -> dict[str, list[dict[str, str]]]:
    session = [{"name": k, "value": v} for k, v in (("ani", call.caller), ("dnis", call.called)) if v]
    tags: dict[str, list[dict[str, str]]] = {}
    if session:
        tags["sessionLevelTags"] = session
    if meta is not None:
        message = [{"name": "inputMode", "value": meta.mode}]
        if meta.confidence is not None:
            message.append({"name": "asrConfidence", "value": f"{meta.confidence:.2f}"})
        tags["messageLevelTags"] = message
    return tags
