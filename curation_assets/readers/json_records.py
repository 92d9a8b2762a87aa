"""Parse one JSON record (a jsonl line, a LLaVA array element, a tar .json sidecar) within the limits.

json.loads has three ways to crash a reader that its JSONDecodeError does not cover: nesting past
Python's recursion limit (RecursionError), integers over 4,300 digits (ValueError), and `\\ud800`
escapes, which decode to lone surrogates that no UTF-8 table can store. Each becomes a quarantine
reason here, so a record is either a value a table can hold or a Quarantined.
"""

from __future__ import annotations

import json
import re
from typing import Any

from curation_assets.quarantine import Quarantined, Reason
from curation_assets.readers.limits import IngestLimits

# A JSON escape of a UTF-16 surrogate: the only way JSON text makes a lone surrogate. (An escaped
# backslash before "ud800" matches too; the value walk then finds nothing, which is fine.)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def parse_json(raw: bytes | str, limits: IngestLimits) -> Any:
    if len(raw) > limits.max_record_bytes:
        raise Quarantined(
            Reason.over_limit, f"record is {len(raw)} bytes, over max_record_bytes ({limits.max_record_bytes})"
        )
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise Quarantined(Reason.non_utf8_text, f"record is not UTF-8 at byte {error.start}") from None
    # A byte order mark is an encoding signature, not content (json.loads refuses one).
    raw = raw.removeprefix("\ufeff")
    try:
        value = json.loads(raw)
    except RecursionError:
        raise Quarantined(Reason.over_limit, "JSON nested deeper than Python's parser allows") from None
    except json.JSONDecodeError as error:
        raise Quarantined(Reason.malformed_json, f"{error.msg} at line {error.lineno} column {error.colno}") from None
    except ValueError as error:  # "Exceeds the limit (4300 digits) for integer string conversion"
        raise Quarantined(Reason.over_limit, f"JSON number too long for Python: {str(error)[:120]}") from None
    if raw.count("[") + raw.count("{") > limits.max_json_depth and json_depth(value) > limits.max_json_depth:
        raise Quarantined(Reason.over_limit, f"JSON nested deeper than max_json_depth ({limits.max_json_depth})")
    if _SURROGATE_ESCAPE.search(raw):
        where = _find_lone_surrogate(value)
        if where is not None:
            raise Quarantined(Reason.non_utf8_text, f"a JSON string holds a lone surrogate ({where})")
    return value


def parse_json_object(raw: bytes | str | None, limits: IngestLimits, size: int = 0) -> dict[str, Any]:
    """A JSON object; `raw` None stands for a record of `size` bytes too long to have been read."""
    if raw is None:
        raise Quarantined(
            Reason.over_limit, f"record is {size} bytes, over max_record_bytes ({limits.max_record_bytes})"
        )
    value = parse_json(raw, limits)
    if not isinstance(value, dict):
        raise Quarantined(Reason.malformed_json, f"expected a JSON object, got {type(value).__name__}")
    return value


def json_depth(value: Any) -> int:
    """How many arrays / objects deep `value` nests (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, dict | list):
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _find_lone_surrogate(value: Any) -> str | None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            match = _LONE_SURROGATE.search(item)
            if match:
                return f"U+{ord(match.group()):04X} in {item[:40]!r}"
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None
