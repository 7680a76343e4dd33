"""Private SQL: the checker (rules over the sqlglot AST) and the bounding rewrite."""

from entrepot.privacy.sql.query import TIME_UNITS, Aggregate, GroupKey, Query
from entrepot.privacy.sql.rewrite import Quantity, Rewrite, rewrite
from entrepot.privacy.sql.rules import RULE_NAMES, RULES, Context, Rule, check

__all__ = [
    "RULES",
    "RULE_NAMES",
    "TIME_UNITS",
    "Aggregate",
    "Context",
    "GroupKey",
    "Quantity",
    "Query",
    "Rewrite",
    "Rule",
    "check",
    "rewrite",
]
