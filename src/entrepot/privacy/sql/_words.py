"""The consumer's own words for a piece of the parse, so refusals quote what was written.

sqlglot renames what it parses (``STRING_AGG`` becomes ``GroupConcat``, ``x::INT``
becomes ``CAST(x AS INT)``) but keeps the character positions of identifiers,
literals and most function names. :class:`Source` maps a node back to the span of
the query text it came from: the positions its leaves kept, widened over the
leading words sqlglot does not position (``CASE``, ``NOT``, a renamed function's
name) and over unclosed brackets.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp
from sqlglot.tokens import Token, TokenType

__all__ = ["Source"]

_OPENERS = {TokenType.L_PAREN, TokenType.L_BRACKET, TokenType.L_BRACE, TokenType.CASE}
_CLOSERS = {TokenType.R_PAREN, TokenType.R_BRACKET, TokenType.R_BRACE, TokenType.END}
# Words that open a node before its first positioned child.
_LEADING = {
    TokenType.L_PAREN,
    TokenType.L_BRACKET,
    TokenType.CASE,
    TokenType.WHEN,
    TokenType.NOT,
    TokenType.DASH,
    TokenType.PLUS,
    TokenType.INTERVAL,
    TokenType.EXISTS,
    TokenType.DISTINCT,
    TokenType.SELECT,
    TokenType.VALUES,
    TokenType.CLUSTER_BY,
    TokenType.DISTRIBUTE_BY,
    TokenType.SORT_BY,
}
# Nodes whose text starts with a word of their own rather than with a child.
_LED = (
    exp.Func,
    exp.Unary,
    exp.Subquery,
    exp.Select,
    exp.Interval,
    exp.Distinct,
    exp.Values,
    exp.Cluster,
    exp.Distribute,
    exp.Sort,
)


class Source:
    """A query's text and tokens, to quote parts of its parse in the user's spelling."""

    def __init__(self, sql: str, tokens: Sequence[Token]) -> None:
        self.sql = sql
        self.tokens = list(tokens)
        self._at_start = {token.start: k for k, token in enumerate(self.tokens)}
        self._at_end = {token.end: k for k, token in enumerate(self.tokens)}

    def quote(self, node: exp.Expr) -> str:
        """The text ``node`` was parsed from.

        A node none of whose parts kept a position is a single word (``?``, ``$1``,
        ``current_date``), whose rendering is the user's text in all but letter case.
        """
        bounds = self._bounds(node)
        if bounds is None:
            return self._token_like(node) or node.sql(dialect="duckdb")
        return self._text(*bounds)

    def name(self, function: exp.Func) -> str:
        """A function's name as written (``string_agg``, not sqlglot's ``GROUP_CONCAT``)."""
        start = function.meta.get("start")
        end = function.meta.get("end")
        if start is not None and end is not None:
            return self.sql[start : end + 1]
        bounds = self._bounds(function)
        if bounds is not None:
            first = bounds[0]
            opened = first + 1 < len(self.tokens) and self.tokens[first + 1].token_type
            if opened is TokenType.L_PAREN:
                return self._text(first, first)
        return self._token_like(function)

    def _bounds(self, node: exp.Expr) -> tuple[int, int] | None:
        starts: list[int] = []
        ends: list[int] = []
        for part in node.walk():
            start, end = part.meta.get("start"), part.meta.get("end")
            if start in self._at_start and end in self._at_end:
                starts.append(start)
                ends.append(end)
        if not starts:
            return None
        first, last = self._at_start[min(starts)], self._at_end[max(ends)]
        if isinstance(node, exp.Unary) and isinstance(node.this, exp.Expr):
            # NOT, a minus or a bracket: one word before its operand.
            inner = self._bounds(node.this)
            first = inner[0] if inner is not None else first
            if first > 0 and self.tokens[first - 1].token_type in _LEADING:
                first -= 1
        elif isinstance(node, _LED) and node.meta.get("start") is None:
            # CASE WHEN, DISTINCT, or a renamed function's name and its bracket; not
            # the words of the call around it (SUM( in SUM(x::INT)).
            led = self._lead(first, single=isinstance(node, exp.If | exp.Distinct))
            parent = node.parent.meta.get("start") if node.parent is not None else None
            if parent is None or self.tokens[led].start > parent:
                first = led
        first, last = self._balance(first, last)
        if isinstance(node, exp.Binary | exp.Cast):
            last = self._trail(node, last)
        return self._balance(first, last)

    def _trail(self, node: exp.Expr, last: int) -> int:
        """Take in a right-hand side sqlglot kept no position for (``= ?``, ``::INT``)."""
        right = node.args.get("expression") or node.args.get("to")
        if not isinstance(right, exp.Expr) or self._bounds(right) is not None:
            return last
        follows = self.tokens[last + 1].token_type if last + 1 < len(self.tokens) else None
        if isinstance(node, exp.Cast) and follows is not TokenType.DCOLON:
            return last
        return min(last + 2, len(self.tokens) - 1)

    def _lead(self, first: int, *, single: bool) -> int:
        while first > 0 and self.tokens[first - 1].token_type in _LEADING:
            first -= 1
            if single:
                return first
            opened = self.tokens[first].token_type is TokenType.L_PAREN
            if opened and first > 0 and self.tokens[first - 1].token_type not in _OPERATORS:
                return first - 1
        return first

    def _balance(self, first: int, last: int) -> tuple[int, int]:
        """Widen ``first..last`` until its brackets and CASE ... END pairs match."""
        while first > 0 and _lowest(self.tokens[first : last + 1]) < 0:
            first -= 1
        depth = sum(_step(token) for token in self.tokens[first : last + 1])
        while depth > 0 and last + 1 < len(self.tokens):
            last += 1
            depth += _step(self.tokens[last])
        return first, last

    def _token_like(self, node: exp.Expr) -> str:
        """A leaf sqlglot kept no position for (``?``, ``current_date``): its token."""
        text = node.sql(dialect="duckdb").upper()
        for token in self.tokens:
            if token.text.upper() == text:
                return self.sql[token.start : token.end + 1]
        return ""

    def _text(self, first: int, last: int) -> str:
        return self.sql[self.tokens[first].start : self.tokens[last].end + 1]


# Tokens after which a '(' opens a group, not a function's arguments.
_OPERATORS = _LEADING | {
    TokenType.COMMA,
    TokenType.EQ,
    TokenType.NEQ,
    TokenType.GT,
    TokenType.GTE,
    TokenType.LT,
    TokenType.LTE,
    TokenType.AND,
    TokenType.OR,
    TokenType.IN,
    TokenType.FROM,
    TokenType.WHERE,
    TokenType.STAR,
    TokenType.SLASH,
    TokenType.THEN,
    TokenType.ELSE,
}


def _step(token: Token) -> int:
    if token.token_type in _OPENERS:
        return 1
    if token.token_type in _CLOSERS:
        return -1
    return 0


def _lowest(tokens: Sequence[Token]) -> int:
    """The lowest bracket depth reached while reading ``tokens``: below 0 if unopened."""
    depth = lowest = 0
    for token in tokens:
        depth += _step(token)
        lowest = min(lowest, depth)
    return lowest
