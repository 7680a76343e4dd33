"""A grant as an ODRL 2.2 Agreement in JSON-LD.

The Agreement names the provider as assigner and the consumer as assignee, one
permission per permitted action on the dataset, constrained by purpose, period and
count, with the grant's duties (attribution; compensation when it has a price). ODRL has
no operand for a privacy budget, so ε is expressed with the entrepot profile's
``entrepot:epsilon`` left operand, declared in the context.

The target is the dataset's ``@id`` in the node's DCAT catalog and the provider's
``uid`` its publisher's ``@id`` there (:mod:`entrepot.exchange.dcat`), so a data-space
connector can join the two documents; the Agreement's ``uid`` is the route that
serves it. The consumer, not being in the catalog, is named by a URN.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from entrepot.exchange._contract_tables import GrantInfo
from entrepot.exchange.dcat import agent_iri, dataset_iri
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


def _party(uid: str) -> dict[str, str]:
    return {"@type": "Party", "uid": uid}


def _money(amount: Decimal, currency: str) -> dict[str, Any]:
    return {
        "leftOperand": "payAmount",
        "operator": "eq",
        "rightOperand": {"@value": f"{amount:.2f}", "@type": "xsd:decimal"},
        "unit": f"urn:iso:std:iso:4217:{currency}",
    }


def agreement(grant: GrantInfo, *, base_url: str) -> dict[str, Any]:
    """The ODRL 2.2 Agreement for ``grant``, as a JSON-LD document (a plain dict);
    IRIs start with ``base_url``, as the DCAT catalog's do."""
    base = base_url if base_url.endswith("/") else base_url + "/"
    target = dataset_iri(base, grant.dataset)
    assigner = _party(agent_iri(base, grant.provider))
    assignee = _party(f"urn:entrepot:org:{grant.consumer}")
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
        duties.append({"action": "attribute", "attributedParty": assigner})
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
            "assigner": assigner,
            "assignee": assignee,
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
        "uid": f"{base}v1/access/grants/GRANT-{grant.id}/odrl",
        "profile": PROFILE,
        "assigner": assigner,
        "assignee": assignee,
        "target": target,
        "permission": permissions,
        "entrepot:state": grant.state,
    }
