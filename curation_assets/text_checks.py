"""Turn raw caption / document text into clean text, or say why it is unusable."""

from __future__ import annotations

import re

from curation_assets.quarantine import Quarantined, Reason

# Special tokens of the formats we read: Data-Juicer's image and end-of-chunk markers, LLaVA's
# image token. They mark structure, not words, so they never count as caption text.
SPECIAL_TOKENS = ("<__dj__image>", "<|__dj__eoc|>", "<image>")
_SPECIAL_TOKEN_PATTERN = re.compile("|".join(re.escape(token) for token in SPECIAL_TOKENS))
_WHITESPACE = re.compile(r"\s+")


def decode_text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Quarantined(Reason.non_utf8_text, f"not UTF-8 at byte {error.start}") from None


def strip_special_tokens(text: str) -> str:
    return _SPECIAL_TOKEN_PATTERN.sub(" ", text)


def clean_caption(raw: object) -> str:
    """One line of caption text without special tokens; raises Quarantined when nothing is left."""
    if raw is None:
        raise Quarantined(Reason.missing_field, "caption is missing")
    if isinstance(raw, bytes):
        raw = decode_text(raw)
    if not isinstance(raw, str):
        raise Quarantined(Reason.missing_field, f"caption is a {type(raw).__name__}, not text")
    caption = _WHITESPACE.sub(" ", strip_special_tokens(raw)).strip()
    if not caption:
        raise Quarantined(Reason.empty_text, f"caption is empty after removing special tokens: {raw[:80]!r}")
    return caption


def clean_document_text(raw: object) -> str:
    """Document text keeps its line breaks; only special tokens go and the ends are trimmed."""
    if raw is None:
        raise Quarantined(Reason.missing_field, "text is missing")
    if isinstance(raw, bytes):
        raw = decode_text(raw)
    if not isinstance(raw, str):
        raise Quarantined(Reason.missing_field, f"text is a {type(raw).__name__}, not a string")
    text = strip_special_tokens(raw).strip()
    if not text:
        raise Quarantined(Reason.empty_text, "text is empty or whitespace only")
    return text
