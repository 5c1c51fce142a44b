"""Bounds for untrusted input, shared by the web views and the webhook parsers.

JSON from outside is parsed with :func:`load_json`, which turns what the
standard parser would crash on (a body nested ten thousand levels deep raises
``RecursionError``) into an :class:`InputError` naming the problem, and refuses
strings no database column can hold: NUL (PostgreSQL rejects it in text) and
lone surrogates (not Unicode, so no driver can encode them).
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_JSON_DEPTH = 32
_SURROGATE = re.compile("[\ud800-\udfff]")


class InputError(ValueError):
    """Input refused; the message says where and why, for a 4xx answer."""


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, or None."""
    if "\x00" in value:
        return "contains a NUL character"
    if _SURROGATE.search(value):
        return "contains a lone surrogate (not valid Unicode)"
    return None


def load_json(raw: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON from outside: at most ``max_depth`` levels, every string storable."""
    try:
        data = json.loads(raw)
    except RecursionError:
        raise InputError(f"JSON nested deeper than {max_depth} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"not JSON: {exc}") from None
    _check_tree(data, max_depth)
    return data


def _check_tree(data: Any, max_depth: int) -> None:
    stack: list[tuple[Any, int, str]] = [(data, 0, "")]
    while stack:
        value, depth, path = stack.pop()
        if isinstance(value, str):
            problem = text_problem(value)
            if problem:
                raise InputError(f"{path or 'the body'} {problem}")
        elif isinstance(value, dict | list):
            if depth >= max_depth:
                raise InputError(f"JSON nested deeper than {max_depth} levels")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                where = f"{path}.{_label(key)}" if path else _label(key)
                if isinstance(key, str) and (problem := text_problem(key)):
                    raise InputError(f"a key in {path or 'the body'} {problem}")
                stack.append((item, depth + 1, where))


def _label(key: Any) -> str:
    """A key as it may appear in an error message (and so in the audit log): short and storable."""
    text = str(key)[:40]
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "?")
