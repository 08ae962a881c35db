"""Bot text to plain text: Kore markdown and SSML tags removed (specs/kore-webhook.md §4.8).

Markdown is parsed with markdown-it (CommonMark) rather than stripped character by character, so
`5 * 3`, `account_number` and numbered options survive; Kore's single-tilde strike-through is not
CommonMark and is handled after.
"""

from __future__ import annotations

import html
import re

from markdown_it import MarkdownIt
from markdown_it.token import Token

_MARKDOWN = MarkdownIt("commonmark", {"html": True})
# Anything that could be markdown or markup; plain sentences skip the parser.
_MAYBE_MARKUP = re.compile(r"[*_~`\[\]#<>!&\\|]|^\s*(?:[-+]|\d+[.)])\s", re.M)
_SSML_TAG = re.compile(
    r"</?(?:speak|break|say-as|prosody|emphasis|sub|audio|p|s|phoneme|voice|lang|mark|amazon:[\w-]+)\b[^>]*>",
    re.I,
)
_KORE_STRIKE = re.compile(r"(?<![\w~])~(\S(?:[^~\n]*\S)?)~(?![\w~])")
_SENTENCE_END = ".!?:;,"
_URL = re.compile(r"\bhttps?://\S+")


def plain_text(text: str) -> str:
    """Markdown and SSML removed; one line per paragraph, heading or list item (numbers kept)."""
    if not _MAYBE_MARKUP.search(text):
        return "\n".join(line.strip() for line in text.strip().splitlines() if line.strip())
    text = _SSML_TAG.sub(" ", text)
    lines: list[str] = []
    prefix = ""
    for token in _MARKDOWN.parse(text):
        if token.type == "list_item_open":
            prefix = f"{token.info}{token.markup} " if token.info else ""
        elif token.type == "inline":
            lines.extend(_inline_lines(token.children or [], prefix))
            prefix = ""
        elif token.type in ("code_block", "fence", "html_block"):
            lines.extend(html.unescape(re.sub(r"<[^>]*>", " ", token.content)).splitlines())
    cleaned = (" ".join(_KORE_STRIKE.sub(r"\1", line).split()) for line in lines)
    return "\n".join(line for line in cleaned if line)


def spoken_text(text: str) -> str:
    """Plain text as one utterance: a sentence per line (a TTS pauses), no URLs (useless on a phone)."""
    sentences = []
    for line in plain_text(text).splitlines():
        line = " ".join(_URL.sub("", line).split())
        if line:
            sentences.append(line if line[-1] in _SENTENCE_END else f"{line}.")
    return " ".join(sentences)


def _inline_lines(children: list[Token], prefix: str) -> list[str]:
    parts = [prefix]
    for child in children:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type == "image":
            parts.append(child.content)  # the alt text
        elif child.type in ("softbreak", "hardbreak"):
            parts.append("\n")
    return "".join(parts).splitlines()
