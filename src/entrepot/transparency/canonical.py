"""Canonical JSON: one byte string per value, so that hashes and signatures agree.

The rule (documented in ``docs/transparency.md``):

- objects with string keys sorted by code point, no insignificant whitespace,
  ``","`` and ``":"`` as separators, UTF-8 without ``\\u`` escapes for non-ASCII;
- numbers are integers only, within ±(2**53 - 1) so every JSON reader keeps them
  exact; real numbers such as ε are written as decimal strings (``"0.1"``), made by
  :func:`decimal_text`, because a float printed by one library and parsed by another
  need not give the same bytes back;
- NaN, infinities, non-string keys and strings that are not valid Unicode are refused.

:func:`parse_canonical` refuses any byte string that is not exactly the canonical
form of what it parses to, so a verifier never accepts two encodings of one entry.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from entrepot.errors import InvalidInput, ProofInvalid

__all__ = [
    "canonical_json",
    "decimal_text",
    "parse_canonical",
    "parse_hash",
    "parse_timestamp",
    "timestamp",
]

# Integers beyond 2**53 lose precision in JavaScript and many JSON readers.
_MAX_SAFE_INT = 2**53 - 1
_HEX32 = re.compile(r"[0-9a-f]{64}")


def _check(value: Any, where: str) -> None:
    if value is None or isinstance(value, bool | str):
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as error:
                raise InvalidInput(
                    f"{where} is not valid Unicode text",
                    hint="remove lone surrogate characters from the value",
                ) from error
        return
    if isinstance(value, int):
        if abs(value) > _MAX_SAFE_INT:
            raise InvalidInput(
                f"{where} = {value} is outside the exact integer range of JSON (±2**53)",
                hint="write large numbers as decimal strings",
            )
        return
    if isinstance(value, float | Decimal):
        raise InvalidInput(
            f"{where} is a floating-point number ({value!r}); log entries hold integers only",
            hint="write real numbers as decimal strings, e.g. decimal_text(0.1) == '0.1'",
        )
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInput(
                    f"{where} has a non-string key {key!r}",
                    hint="use strings as the keys of log entries",
                )
            _check(key, f"{where} key")
            _check(item, f"{where}.{key}")
        return
    if isinstance(value, list | tuple):
        for position, item in enumerate(value):
            _check(item, f"{where}[{position}]")
        return
    raise InvalidInput(
        f"{where} has type {type(value).__name__}, which canonical JSON cannot hold",
        hint="use str, int, bool, None, lists and dicts (decimal strings for real numbers)",
    )


def canonical_json(value: Any, *, where: str = "value") -> bytes:
    """The canonical UTF-8 bytes of ``value``; raises InvalidInput on anything ambiguous."""
    # Fast path in C: encode, read back refusing floats, and compare; a value that does
    # not survive the round trip unchanged is walked again to say exactly what is wrong.
    try:
        text = json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
        data = text.encode("utf-8")
        if json.loads(text, parse_float=_refuse_float, parse_int=_safe_int) == value:
            return data
    except (TypeError, ValueError):
        pass
    _check(value, where)
    raise InvalidInput(
        f"{where} does not read back as the same value from JSON",
        hint="use str, int, bool, None, lists and dicts (decimal strings for real numbers)",
    )


def _safe_int(text: str) -> int:
    number = int(text)
    if abs(number) > _MAX_SAFE_INT:
        raise ValueError(text)
    return number


def parse_canonical(data: bytes, *, what: str) -> Any:
    """Parse ``data``, refusing it unless it is exactly canonical JSON (ProofInvalid)."""
    try:
        text = data.decode("utf-8")
        value = json.loads(
            text,
            parse_float=_refuse_float,
            parse_int=_safe_int,
            parse_constant=_refuse,
        )
    except RecursionError:
        raise ProofInvalid(
            f"{what} is nested too deeply to be JSON this program reads",
            hint="the bytes were altered; fetch a fresh copy from the node",
            part=what,
        ) from None
    except (UnicodeDecodeError, ValueError) as error:
        raise ProofInvalid(
            f"{what} is not valid JSON with integer numbers: {error}",
            hint="the bytes were altered or truncated; fetch a fresh copy from the node",
            part=what,
        ) from error
    # Parsed JSON holds only JSON types, so re-encoding it is the whole check (a lone
    # surrogate, which only an escape can spell, comes back raw and differs).
    again = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if again != text:
        raise ProofInvalid(
            f"{what} is not in canonical JSON form",
            hint="entries and heads are signed and hashed in canonical form; do not reformat them",
            part=what,
        )
    return value


def _refuse_float(text: str) -> Any:
    raise ValueError(f"floating-point number {text} (canonical JSON holds integers only)")


def _refuse(text: str) -> Any:
    raise ValueError(f"non-finite number {text}")


def decimal_text(value: float | int | str | Decimal) -> str:
    """The decimal string for a real number: the shortest text that reads back exactly.

    ``decimal_text(0.1) == "0.1"``; NaN and infinities are refused.
    """
    if isinstance(value, bool):
        raise InvalidInput(f"{value!r} is not a number", hint="pass an int, float or decimal")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(
                f"{value!r} cannot be logged: only finite numbers can",
                hint="check the computation that produced it",
            )
        # repr() of a float is the shortest string that round-trips (Python >= 3.1).
        number = Decimal(repr(value))
    else:
        try:
            number = Decimal(value)
        except InvalidOperation as error:
            raise InvalidInput(
                f"{value!r} is not a decimal number", hint="write it like 0.1 or 2"
            ) from error
        if not number.is_finite():
            raise InvalidInput(
                f"{value!r} cannot be logged: only finite numbers can",
                hint="check the computation that produced it",
            )
    text = format(number.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def parse_hash(text: Any, *, what: str) -> bytes:
    """A 32-byte hash from its lowercase hex form; anything else is ProofInvalid."""
    if not isinstance(text, str) or not _HEX32.fullmatch(text):
        raise ProofInvalid(
            f"{what} is not a 32-byte hash in lowercase hex",
            hint="hashes are 64 lowercase hex digits; the value was altered or truncated",
            part=what,
        )
    return bytes.fromhex(text)


def timestamp(moment: datetime | None = None) -> str:
    """RFC 3339 UTC time with microseconds, the one form times take in entries and heads."""
    moment = datetime.now(UTC) if moment is None else moment
    if moment.tzinfo is None:
        raise InvalidInput(
            f"time {moment.isoformat()} has no time zone",
            hint="pass an aware datetime, e.g. datetime.now(UTC)",
        )
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: Any, *, what: str) -> datetime:
    """The datetime of a :func:`timestamp` string; anything else is ProofInvalid."""
    try:
        if not isinstance(text, str) or not text.endswith("Z"):
            raise ValueError(text)
        moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError as error:
        raise ProofInvalid(
            f"{what} is not a UTC time like 2026-01-31T12:00:00.000000Z",
            hint="the value was altered",
            part=what,
        ) from error
    if timestamp(moment) != text:
        raise ProofInvalid(
            f"{what} is not in canonical time form", hint="it was altered", part=what
        )
    return moment
