"""A grant as an ODRL 2.2 Agreement in JSON-LD.

The Agreement names the provider as assigner and the consumer as assignee, one
permission per permitted action on the dataset, constrained by purpose, period and
count, with the grant's duties (attribution; compensation when it has a price). ODRL has
no operand for a privacy budget, so ε is expressed with the entrepot profile's
``entrepot:epsilon`` left operand, declared in the context.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from entrepot.exchange._contract_models import GrantInfo
from entrepot.exchange.purposes import purposes

__all__ = ["ACTION_IRIS", "PROFILE", "agreement"]

PROFILE = "https://w3id.org/entrepot/odrl"
_NS = PROFILE + "#"

# The exchange's actions as ODRL actions: aggregate queries are odrl:aggregate; the
# other two are profile actions included in odrl:use (ODRL 2.2 §2.3, includedIn).
ACTION_IRIS = {
    "aggregate-query": "aggregate",
    "private-join": "entrepot:privateJoin",
    "release-download": "entrepot:releaseDownload",
}


def _party(slug: str) -> dict[str, str]:
    return {"@type": "Party", "uid": f"urn:entrepot:org:{slug}"}


def _money(amount: Decimal, currency: str) -> dict[str, Any]:
    return {
        "leftOperand": "payAmount",
        "operator": "eq",
        "rightOperand": {"@value": f"{amount:.2f}", "@type": "xsd:decimal"},
        "unit": f"urn:iso:std:iso:4217:{currency}",
    }


def agreement(grant: GrantInfo) -> dict[str, Any]:
    """The ODRL 2.2 Agreement for ``grant``, as a JSON-LD document (a plain dict)."""
    target = f"urn:entrepot:dataset:{grant.dataset}"
    purpose = purposes().get(grant.purpose)
    constraints: list[dict[str, Any]] = [
        {
            "leftOperand": "purpose",
            "operator": "isA",
            "rightOperand": {
                "@id": (purpose.dpv if purpose and purpose.dpv else None)
                or f"{_NS}purpose/{grant.purpose}"
            },
        },
        {
            "leftOperand": "dateTime",
            "operator": "gteq",
            "rightOperand": {"@value": grant.valid_from.isoformat(), "@type": "xsd:date"},
        },
        {
            "leftOperand": "dateTime",
            "operator": "lteq",
            "rightOperand": {"@value": grant.valid_until.isoformat(), "@type": "xsd:date"},
        },
        {
            "leftOperand": "entrepot:epsilon",
            "operator": "lteq",
            "rightOperand": {"@value": repr(grant.epsilon), "@type": "xsd:decimal"},
        },
    ]
    if grant.max_queries is not None:
        constraints.append(
            {"leftOperand": "count", "operator": "lteq", "rightOperand": grant.max_queries}
        )
    duties: list[dict[str, Any]] = []
    if "attribution" in grant.duties:
        duties.append({"action": "attribute", "attributedParty": _party(grant.provider)})
    prices = []
    if grant.price_per_query:
        prices.append(("use", grant.price_per_query))
    if grant.price_per_epsilon:
        prices.append(("entrepot:epsilon", grant.price_per_epsilon))
    for unit, amount in prices:
        refinement = _money(amount, grant.currency)
        refinement["entrepot:per"] = unit
        duties.append(
            {"action": [{"rdf:value": {"@id": "odrl:compensate"}, "refinement": [refinement]}]}
        )
    permissions = [
        {
            "target": target,
            "assigner": _party(grant.provider),
            "assignee": _party(grant.consumer),
            "action": ACTION_IRIS[action],
            "constraint": constraints,
            **({"duty": duties} if duties else {}),
        }
        for action in grant.actions
    ]
    return {
        "@context": [
            "http://www.w3.org/ns/odrl.jsonld",
            {"entrepot": _NS, "xsd": "http://www.w3.org/2001/XMLSchema#"},
        ],
        "@type": "Agreement",
        "uid": f"urn:entrepot:grant:{grant.id}",
        "profile": PROFILE,
        "assigner": _party(grant.provider),
        "assignee": _party(grant.consumer),
        "target": target,
        "permission": permissions,
        "entrepot:state": grant.state,
    }
