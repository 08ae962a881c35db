"""Kore.ai webhook URL shapes: v1 `…/chatbot/hooks/{botId}`, v2 `…/chatbot/v2/webhook/{botId}`, poll URL."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Version = Literal["v1", "v2"]

# specs/kore-webhook.md §1.1: both versions, optionally with `/hookInstance/{webHookId}`.
_SHAPE = re.compile(
    r"^(?P<base>https?://[^/?#]+(?:/[^?#]*?)?)/chatbot/(?P<kind>hooks|v2/webhook)/(?P<bot>[^/?#]+)"
    r"(?:/hookInstance/(?P<instance>[^/?#]+))?/?$"
)


@dataclass(frozen=True, slots=True)
class WebhookUrl:
    """Where a bot's webhook channel lives; `url` and `poll_url` are built for `version`."""

    base: str
    bot_id: str
    instance: str | None
    version: Version

    @classmethod
    def parse(cls, url: str, version: Version | None = None) -> WebhookUrl:
        """Read a v1 or v2 URL; `version` forces the other shape the way the Web SDK rewrites it.

        Raises:
            ValueError: the URL has neither shape (the message does not repeat the URL).
        """
        m = _SHAPE.match(url.strip())
        if not m:
            raise ValueError("must look like https://HOST/chatbot/v2/webhook/BOT_ID "
                             "or https://HOST/chatbot/hooks/BOT_ID (optionally /hookInstance/ID)")
        inferred: Version = "v1" if m["kind"] == "hooks" else "v2"
        return cls(m["base"], m["bot"], m["instance"], version or inferred)

    @property
    def url(self) -> str:
        kind = "hooks" if self.version == "v1" else "v2/webhook"
        tail = f"/hookInstance/{self.instance}" if self.instance else ""
        return f"{self.base}/chatbot/{kind}/{self.bot_id}{tail}"

    def poll_url(self, poll_id: str) -> str:
        """v2 poll URL (§4.3): no hookInstance segment, the `/poll/` spelling all SDKs use."""
        return f"{self.base}/chatbot/v2/webhook/{self.bot_id}/poll/{poll_id}"
