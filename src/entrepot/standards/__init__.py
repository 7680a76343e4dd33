"""The common standard: Table Schema files with column roles, code lists, mappings, validation.

::

    from entrepot import standards

    standards.names()                       # ['health.visit', 'mobility.presence', ...]
    visit = standards.get("health.visit")   # or standards.get("./my-schema.json")
    standards.codelist("region.district")   # codes, labels, parent codes
    with standards.validate(path, visit, mapping=Path("riverside.yaml")) as v:
        v.report.to_dict()
"""

from typing import TYPE_CHECKING

from entrepot._lazy import lazy
from entrepot.standards._rules import SQL_TYPES
from entrepot.standards.codelist import CodeList, codelist, codelist_names
from entrepot.standards.mapping import (
    ENCODINGS,
    UNITS,
    ColumnMap,
    Mapping,
    Source,
    load_mapping,
    parse_mapping,
)
from entrepot.standards.registry import get, names
from entrepot.standards.report import RULES, OffendingRow, Report, Violation
from entrepot.standards.schema import (
    TYPES,
    Field,
    ForeignKey,
    Role,
    Standard,
    load_standard_file,
    parse_standard,
)

if TYPE_CHECKING:
    from entrepot.standards.validation import Validation, validate

__all__ = [
    "ENCODINGS",
    "RULES",
    "SQL_TYPES",
    "TYPES",
    "UNITS",
    "CodeList",
    "ColumnMap",
    "Field",
    "ForeignKey",
    "Mapping",
    "OffendingRow",
    "Report",
    "Role",
    "Source",
    "Standard",
    "Validation",
    "Violation",
    "codelist",
    "codelist_names",
    "get",
    "load_mapping",
    "load_standard_file",
    "names",
    "parse_mapping",
    "parse_standard",
    "validate",
]

# Validation loads DuckDB: reading a standard or a code list does not.
__getattr__ = lazy(
    __name__, dict.fromkeys(("Validation", "validate"), "entrepot.standards.validation")
)
