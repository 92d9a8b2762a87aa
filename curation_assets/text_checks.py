"""Turn raw caption / document text into clean text, or say why it is unusable."""

from __future__ import annotations

import re
import unicodedata

from curation_assets.quarantine import Quarantined, Reason

# Special tokens of the formats we read: Data-Juicer's image and end-of-chunk markers, LLaVA's
# image token. They mark structure, not words, so they never count as caption text.
SPECIAL_TOKENS = ("<__dj__image>", "<|__dj__eoc|>", "<image>")
_SPECIAL_TOKEN_PATTERN = re.compile("|".join(re.escape(token) for token in SPECIAL_TOKENS))
_WHITESPACE = re.compile(r"\s+")

# Characters that show nothing: Unicode's format (Cf: zero-width space U+200B, marks U+200E/F,
# word joiner U+2060, embeddings U+202A-E, BOM U+FEFF), control (Cc) and separator categories,
# plus letters that are blank by design (Hangul fillers, Braille blank, Mongolian vowel separator).
# A text of only these reads as empty to any person and any model.
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Cc", "Cs", "Zs", "Zl", "Zp"})
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u180e")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def decode_text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Quarantined(Reason.non_utf8_text, f"not UTF-8 at byte {error.start}") from None


def strip_special_tokens(text: str) -> str:
    return _SPECIAL_TOKEN_PATTERN.sub(" ", text)


def has_visible_text(text: str) -> bool:
    """Whether any character of `text` would show: not whitespace, not format or control."""
    return any(
        not char.isspace() and char not in _BLANK_LETTERS and unicodedata.category(char) not in _INVISIBLE_CATEGORIES
        for char in text
    )


def clean_caption(raw: object, max_chars: int | None = None) -> str:
    """One line of caption text without special tokens; raises Quarantined when nothing is left."""
    raw = _as_text(raw, "caption", max_chars)
    caption = _WHITESPACE.sub(" ", strip_special_tokens(raw)).strip()
    if not has_visible_text(caption):
        raise Quarantined(Reason.empty_text, f"caption has no visible text after removing special tokens: {raw[:80]!r}")
    return caption


def clean_document_text(raw: object, max_chars: int | None = None) -> str:
    """Document text keeps its line breaks; only special tokens go and the ends are trimmed."""
    raw = _as_text(raw, "text", max_chars)
    text = strip_special_tokens(raw).strip()
    if not has_visible_text(text):
        raise Quarantined(Reason.empty_text, "text is empty or has no visible character")
    return text


def check_text(text: str, what: str, max_chars: int | None = None) -> str:
    """`text` unchanged if it is storable text within the length limit; else Quarantined."""
    if max_chars is not None and len(text) > max_chars:
        raise Quarantined(Reason.over_limit, f"{what} has {len(text)} characters, over max_text_chars ({max_chars})")
    surrogate = _LONE_SURROGATE.search(text)
    if surrogate is not None:
        # Only JSON's \ud800 escapes make these; no UTF-8 text (and so no table) can hold one.
        raise Quarantined(
            Reason.non_utf8_text, f"{what} holds a lone surrogate U+{ord(surrogate.group()):04X} at {surrogate.start()}"
        )
    return text


def _as_text(raw: object, what: str, max_chars: int | None) -> str:
    if raw is None:
        raise Quarantined(Reason.missing_field, f"{what} is missing")
    if isinstance(raw, bytes):
        raw = decode_text(raw)
    if not isinstance(raw, str):
        raise Quarantined(Reason.missing_field, f"{what} is a {type(raw).__name__}, not text")
    return check_text(raw, what, max_chars)
