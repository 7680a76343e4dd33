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

# Eager, unlike the rest: the function ``codelist`` would otherwise be shadowed by its
# module, which importing any module that reads a code list binds in this package.
from entrepot.standards.codelist import CodeList, codelist, codelist_names

if TYPE_CHECKING:
    from entrepot.standards._rules import SQL_TYPES
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

# Each name loads with its module: validation loads DuckDB, a mapping PyYAML, and
# reading a dataset's standard needs neither.
_MODULES = {
    "SQL_TYPES": "_rules",
    "ENCODINGS": "mapping",
    "UNITS": "mapping",
    "ColumnMap": "mapping",
    "Mapping": "mapping",
    "Source": "mapping",
    "load_mapping": "mapping",
    "parse_mapping": "mapping",
    "TYPES": "schema",
    "Field": "schema",
    "ForeignKey": "schema",
    "Role": "schema",
    "Standard": "schema",
    "load_standard_file": "schema",
    "parse_standard": "schema",
    "get": "registry",
    "names": "registry",
    "RULES": "report",
    "OffendingRow": "report",
    "Report": "report",
    "Violation": "report",
    "Validation": "validation",
    "validate": "validation",
}
__getattr__ = lazy(
    __name__, {name: f"entrepot.standards.{module}" for name, module in _MODULES.items()}
)
