"""The bot's answer: v1/v2 bodies (sync, poll, async callback) read into the conversation's `BotReply`."""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from adapter.calls.keypad import ExpectedInput
from adapter.calls.replies import BotReply, CallAction, Menu, MenuOption
from adapter.kore.errors import KoreBadResponse
from adapter.kore.flatten import flatten
from adapter.kore.voice_directive import read_directive
from adapter.kore.webhook_url import Version

log = logging.getLogger(__name__)

# Keys 1-9 select options; 0, * and # stay free for the conversation (operator, repeat, finish).
MENU_KEYS = "123456789"


@dataclass(frozen=True, slots=True)
class BotMessage:
    """One message as received: v2 `data[i]`, or one item of v1 `text`."""

    val: Any
    type: str = "text"
    message_id: str | None = None
    created_on: str | None = None


@dataclass(frozen=True, slots=True)
class BotBody:
    """A parsed sync response, poll response or async callback."""

    messages: tuple[BotMessage, ...] = ()
    poll_id: str | None = None  # v2: more to poll for (also set while `"status": "Inprogress"`)
    end_of_task: bool = False
    user_id: str | None = None  # `to`: the caller the message is for
    sender: str | None = None  # `from`: usually the bot's stream id


def reply_from_messages(messages: Iterable[BotMessage], *, end_of_task: bool = False,
                        pending: bool = False) -> BotReply:
    """The conversation's `BotReply` for Kore messages, flattened in order; options are numbered 1-9
across the whole reply."""
    prompts: list[str] = []
    texts: list[str] = []
    options: list[MenuOption] = []
    action: CallAction | None = None
    expect: ExpectedInput | None = None
    kept = tuple(messages)
    for message in kept:
        if message.type == "event":
            continue
        flat = flatten(message.val)
        if not (flat.speech or flat.options or flat.voice):
            log.warning("the bot's %s message %s has nothing a voice channel can say (%s)", message.type,
                        message.message_id or "", type(message.val).__name__)
        speech = flat.speech
        for option in flat.options:
            if len(options) == len(MENU_KEYS):
                log.info("bot offered over %d options; the rest are not on the keypad", len(MENU_KEYS))
                break
            digit = MENU_KEYS[len(options)]
            options.append(MenuOption(digit, option.title, option.payload))
            speech = f"{speech} For {option.title}, press {digit}.".strip()
        if speech:
            prompts.append(speech)
        if flat.text:
            texts.append(flat.text)
        if flat.voice is not None:
            try:
                new_action, new_expect = read_directive(flat.voice)
            except ValueError as exc:
                log.warning("ignoring the bot's voice payload: %s", exc)
                continue
            action = new_action or action
            expect = new_expect or expect
    menu = Menu(tuple(options)) if options else None
    return BotReply(tuple(prompts), tuple(texts), menu, expect, action, end_of_task, pending, kept)


def parse_body(version: Version, body: Any) -> BotBody:
    """Read a v1 (`text`) or v2 (`data[]`) body; raises `KoreBadResponse` for other shapes.

    Either field is read whatever the version (the version's own first): bots and gateways mix them,
    and a reply read as nothing would leave the caller in silence.
    """
    if not isinstance(body, Mapping):
        raise KoreBadResponse("the JSON body is not an object")
    end_of_task = body.get("endOfTask") is True
    user_id, sender = _user_id(body.get("to")), _user_id(body.get("from"))
    fields = ("text", "data") if version == "v1" else ("data", "text")
    field = next((f for f in fields if body.get(f) is not None), "data")
    if field == "text":
        return BotBody(_v1_messages(body["text"]), _str(body.get("pollId")), end_of_task, user_id, sender)
    data = body.get("data", [])
    if not isinstance(data, list) or not all(isinstance(item, Mapping) for item in data):
        raise KoreBadResponse("the body's data is not a list of messages")
    messages = tuple(
        BotMessage(item.get("val"), str(item.get("type") or "text"), _str(item.get("messageId")),
                   _str(item.get("createdOn")))
        for item in data
    )
    end_of_task = end_of_task or any(item.get("endOfTask") is True for item in data)
    return BotBody(messages, _str(body.get("pollId")), end_of_task, user_id, sender)


def unseen(messages: Iterable[BotMessage], seen: Collection[str]) -> list[BotMessage]:
    """The messages whose `messageId` is not in `seen`.

    Kore may deliver a message again in a later poll or callback (specs §9), but messages of one
    body may share an id (Kore's own language-change sample does): callers add a body's ids to
    `seen` only after filtering the whole body.
    """
    return [m for m in messages if m.message_id is None or m.message_id not in seen]


def _v1_messages(text: Any) -> tuple[BotMessage, ...]:
    if text is None:
        return ()
    items = text if isinstance(text, list) else [text]
    return tuple(BotMessage(item) for item in items if item not in ("", None))


def _user_id(to: Any) -> str | None:
    if isinstance(to, Mapping):
        to = to.get("id")
    return _str(to)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
