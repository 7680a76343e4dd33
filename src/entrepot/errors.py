"""One error tree for the whole of entrepot.

Every error a user can meet is an :class:`EntrepotError`. Each carries a stable
``code``, a human ``message`` (what went wrong and where), a ``hint`` (how to fix
it), an HTTP ``status``, a command-line ``exit_code`` and structured ``details``. The
API turns any of them into one JSON shape, ``{"error": {"code", "message", "hint",
...details}}``; the CLI into one friendly paragraph and its exit code, never a
traceback::

    EntrepotError          500 1 internal
    ├── InvalidInput       400 5 invalid_input       malformed file, bad argument
    │   └── ValidationFailed  422 5 validation_failed  rows broke the standard (report)
    ├── Unauthorized       401 3 unauthorized        no or bad credentials
    ├── Forbidden          403 3 forbidden           authenticated, but not allowed
    │   └── ContractViolation 403 3 contract_violation  a grant's clause refused (clause)
    ├── PolicyViolation    403 3 policy_violation    a privacy rule refused (rule)
    ├── BudgetExhausted    403 3 budget_exhausted    not enough ε left (budget)
    ├── NotFound           404 4 not_found
    ├── Conflict           409 6 conflict            exists already, or a bad state change
    ├── LimitExceeded      413 3 limit_exceeded      a resource limit was hit (setting)
    ├── ProofInvalid       422 7 proof_invalid       a proof, head, signature or receipt failed
    ├── QueryFailed        500 1 query_failed        a query failed after reading data (ε spent)
    ├── StorageCorrupt     500 1 storage_corrupt     stored state failed an integrity check
    └── PeerError          502 8 peer_error          a server or peer unreachable, slow or wrong

The exit codes are :class:`ExitCode`, the same for every command (docs/cli.md).

A message or hint that names a parameter writes it with :func:`param` and the API's
name for it (``param("max_queries")``), never a door's spelling: the API renders it
as the field (`` `max_queries` ``, listed in the body's ``parameters``), the CLI as
its flag (``--max-queries``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from enum import IntEnum
from typing import Any, ClassVar

__all__ = [
    "BudgetExhausted",
    "Conflict",
    "ContractViolation",
    "EntrepotError",
    "ExitCode",
    "Forbidden",
    "InvalidInput",
    "LimitExceeded",
    "NotFound",
    "PeerError",
    "PolicyViolation",
    "ProofInvalid",
    "QueryFailed",
    "StorageCorrupt",
    "Unauthorized",
    "ValidationFailed",
    "from_body",
    "param",
    "render",
]

# A parameter as a message or hint holds it until a door renders it.
_PARAMETER = re.compile("\u27e8([a-z_]+)\u27e9")
# Parameters that are no field of the API: what a caller of the API does instead.
_API_WORDS = {"as": "a token of"}


def param(name: str) -> str:
    """``name``, the API's name of a parameter, in a message or hint for each door to
    render: `` `name` `` over the API, its flag on the command line."""
    return f"\u27e8{name}\u27e9"


def render(text: str, spell: Callable[[str], str]) -> str:
    """``text`` with each :func:`param` spelled by ``spell`` (a door's spelling)."""
    return _PARAMETER.sub(lambda found: spell(found[1]), text)


def _as_field(name: str) -> str:
    return _API_WORDS.get(name, f"`{name}`")


class ExitCode(IntEnum):
    """How every ``entrepot`` command ends, for scripts."""

    OK = 0
    INTERNAL = 1  # a bug, a query that failed after reading data, corrupt storage
    USAGE = 2  # an unknown command or option, a missing or malformed argument
    REFUSED = 3  # a privacy rule, contract clause, budget, permission, credential or limit
    NOT_FOUND = 4
    INVALID = 5  # a malformed file or value; rows that break the standard
    CONFLICT = 6  # exists already, or not in a state that allows it
    VERIFY_FAILED = 7  # a proof, signature, receipt, log or file that does not check
    UNREACHABLE = 8  # a server or peer unreachable, timed out or answering badly
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it)


class EntrepotError(Exception):
    """Root of every error entrepot raises on purpose."""

    code: ClassVar[str] = "internal"
    status: ClassVar[int] = 500
    exit_code: ClassVar[ExitCode] = ExitCode.INTERNAL

    def __init__(self, message: str, *, hint: str = "", **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """The canonical JSON body: ``{"error": {"code", "message", "hint", ...}}``, its
        parameters spelled as the API's fields (and listed in ``parameters``)."""
        body: dict[str, Any] = {
            "code": self.code,
            "message": render(self.message, _as_field),
            "hint": render(self.hint, _as_field),
        }
        named = _PARAMETER.findall(self.message + self.hint)
        fields = sorted({name for name in named if name not in _API_WORDS})
        if fields:
            body["parameters"] = fields
        body.update({k: v for k, v in self.details.items() if k not in body})
        return {"error": body}

    def __str__(self) -> str:
        return render(self.message, _as_field)


class InvalidInput(EntrepotError):
    code = "invalid_input"
    status = 400
    exit_code = ExitCode.INVALID


class ValidationFailed(InvalidInput):
    """Rows broke the standard; ``details["report"]`` holds the validation report."""

    code = "validation_failed"
    status = 422


class Unauthorized(EntrepotError):
    code = "unauthorized"
    status = 401
    exit_code = ExitCode.REFUSED


class Forbidden(EntrepotError):
    code = "forbidden"
    status = 403
    exit_code = ExitCode.REFUSED


class ContractViolation(Forbidden):
    """A clause of the access contract refused the use; ``details["clause"]`` names it."""

    code = "contract_violation"

    def __init__(self, message: str, *, clause: str, hint: str = "", **details: Any) -> None:
        super().__init__(message, hint=hint, clause=clause, **details)
        self.clause = clause


class PolicyViolation(EntrepotError):
    """A privacy rule refused a query; ``rule`` names the rule that fired."""

    code = "policy_violation"
    status = 403
    exit_code = ExitCode.REFUSED

    def __init__(self, message: str, *, rule: str, hint: str = "", **details: Any) -> None:
        super().__init__(message, hint=hint, rule=rule, **details)
        self.rule = rule


class BudgetExhausted(EntrepotError):
    """Not enough ε left; ``budget`` names which budget refused (``grant`` or ``dataset``)."""

    code = "budget_exhausted"
    status = 403
    exit_code = ExitCode.REFUSED

    def __init__(self, message: str, *, budget: str, hint: str = "", **details: Any) -> None:
        super().__init__(message, hint=hint, budget=budget, **details)
        self.budget = budget


class NotFound(EntrepotError):
    code = "not_found"
    status = 404
    exit_code = ExitCode.NOT_FOUND


class Conflict(EntrepotError):
    code = "conflict"
    status = 409
    exit_code = ExitCode.CONFLICT


class LimitExceeded(EntrepotError):
    """A resource limit was hit; ``setting`` names the setting that raises it."""

    code = "limit_exceeded"
    status = 413
    exit_code = ExitCode.REFUSED

    def __init__(self, message: str, *, setting: str, hint: str = "", **details: Any) -> None:
        super().__init__(message, hint=hint, setting=setting, **details)
        self.setting = setting


class ProofInvalid(EntrepotError):
    code = "proof_invalid"
    status = 422
    exit_code = ExitCode.VERIFY_FAILED


class QueryFailed(EntrepotError):
    """A private query failed after its data was read: one message for every cause.

    The cause (a time or memory limit, an engine fault) is kept out of the answer,
    since it may depend on the data; the ε stays spent and the failure is logged.
    """

    code = "query_failed"
    status = 500


class StorageCorrupt(EntrepotError):
    code = "storage_corrupt"
    status = 500


class PeerError(EntrepotError):
    code = "peer_error"
    status = 502
    exit_code = ExitCode.UNREACHABLE


def from_body(body: Mapping[str, Any]) -> EntrepotError:
    """The error an ``{"error": body}`` answer describes, as its class of this tree.

    For errors raised in another process or on a server: ``code`` picks the class
    (:class:`EntrepotError` for a code this version does not know), and the named
    field (rule, clause, budget, setting) is an attribute again.
    """
    fields = dict(body)
    code, message = fields.pop("code", ""), fields.pop("message", "")
    hint = fields.pop("hint", "")
    # The API spelled each parameter as its field: each door spells it again its own way.
    for name in fields.pop("parameters", None) or ():
        if isinstance(name, str) and _PARAMETER.fullmatch(param(name)):
            message = message.replace(f"`{name}`", param(name))
            hint = hint.replace(f"`{name}`", param(name))
    tree = [c for c in globals().values() if isinstance(c, type) and issubclass(c, EntrepotError)]
    by_code = {c.code: c for c in tree}
    cls = by_code.get(code, EntrepotError)
    error = cls.__new__(cls)
    EntrepotError.__init__(error, message, hint=hint, **fields)
    for name in ("rule", "clause", "budget", "setting"):
        if name in fields:
            setattr(error, name, fields[name])
    return error
