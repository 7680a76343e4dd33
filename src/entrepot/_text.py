"""Text that is safe to store and to print: one validator, one escaper.

Names, titles, descriptions, notes and reasons are typed by one party and shown in
another party's terminal. A control character in them can move the cursor, rewrite
the screen, set the window title or hide a hyperlink (ESC and OSC sequences), and a
bidirectional override can make a line read differently from the bytes it holds
(the "Trojan Source" characters, CVE-2021-42574). So :func:`check_text` refuses
them where text enters (every core function that stores such a field calls it), and
:func:`printable` escapes them wherever text leaves for a terminal, for what was
stored before and for text read from files (CSV cells in validation reports).
"""

from __future__ import annotations

import unicodedata

from entrepot.errors import InvalidInput

__all__ = [
    "NAME_MAX",
    "NOTE_MAX",
    "TEXT_MAX",
    "TITLE_MAX",
    "check_text",
    "excerpt",
    "is_unsafe",
    "printable",
    "with_article",
]

# The most characters each kind of typed text holds, wherever it enters.
NAME_MAX = 200  # an organization's or a provider's name
TITLE_MAX = 200  # a dataset's title
NOTE_MAX = 2000  # a request's note, a refusal's or a revocation's reason
TEXT_MAX = 5000  # a dataset's description

# Bidirectional embeddings, overrides and isolates (Unicode TR #9): the characters
# that reorder what follows them. Line and paragraph separators break a line
# where a single-line field must not.
_BIDI_AND_SEPARATORS = frozenset(
    [chr(c) for c in range(0x202A, 0x202F)]
    + [chr(c) for c in range(0x2066, 0x206A)]
    + ["\u2028", "\u2029"]
)


def is_unsafe(char: str) -> bool:
    """Whether ``char`` may change what a terminal shows beyond itself.

    C0 and C1 controls and DEL (category Cc), lone surrogates (Cs, which no UTF-8
    output can carry), bidirectional controls and line/paragraph separators.
    """
    return char in _BIDI_AND_SEPARATORS or unicodedata.category(char) in ("Cc", "Cs")


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, multiline: bool = False) -> str:
    """``text`` with every unsafe character written as a visible escape (``\\x1b``).

    A newline stays a newline only when ``multiline`` is set (a description shown as
    a paragraph); in a table cell or a one-line message it is escaped like the rest.
    """
    if not any(is_unsafe(c) for c in text):
        return text
    return "".join(c if (c == "\n" and multiline) or not is_unsafe(c) else _escape(c) for c in text)


def excerpt(text: str, limit: int = 40) -> str:
    """At most ``limit`` characters of ``text``, escaped, with ``…`` where it was cut.

    What an error or a report may quote of a file it read: enough to find the place,
    never a whole line of a file that may not be what the user meant to give.
    """
    shown = printable(text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def check_text(value: str, field: str, *, most: int, multiline: bool = False) -> str:
    """Return ``value`` if it holds no unsafe character and at most ``most`` characters,
    else raise :class:`InvalidInput`.

    ``field`` names the field in the error (``"provider name"``); ``multiline``
    allows newlines, for fields that are paragraphs by nature (descriptions, notes).
    """
    if len(value) > most:
        raise InvalidInput(
            f"the {field} has {len(value):,} characters, more than the {most:,} it may hold",
            hint=f"shorten the {field} to at most {most:,} characters",
            field=field,
        )
    for position, char in enumerate(value):
        if is_unsafe(char) and not (multiline and char == "\n"):
            lines = "; newlines are allowed" if multiline else "; it is one line of text"
            raise InvalidInput(
                f"the {field} holds the control character {_escape(char)} at position "
                f"{position + 1}",
                hint=f"remove control, escape and bidirectional characters from the {field}"
                + lines,
                field=field,
            )
    return value


def with_article(word: str) -> str:
    """``word`` with its indefinite article: a consumer, an auditor, an operator."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"
