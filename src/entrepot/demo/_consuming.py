"""Steps of the demo where the exchange is used: access, a private query, the audit log.

A provincial health bureau asks Riverside Hospitals for its visits, for public
health surveillance. Riverside sets the dataset's privacy policy and grants a
budget of ε; the bureau asks for visits and mean cost per district and gets noisy
figures with intervals and a signed receipt; a query for patients' rows is refused
by the policy. Every answer and refusal is in the transparency log, which the
audit step checks as any outsider could.
"""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from entrepot.client.local import answer_body
from entrepot.demo._context import PROVINCES
from entrepot.demo._state import Demo
from entrepot.demo.manifest import DemoFile
from entrepot.demo.population import DEMO_YEAR
from entrepot.errors import BudgetExhausted, Conflict, ContractViolation, PolicyViolation
from entrepot.exchange.accounts import LOCAL, Actor
from entrepot.transparency import verify_receipt
from entrepot.vault import DatasetRef

__all__ = [
    "CONSUMER",
    "PURPOSE",
    "QUERY",
    "REFUSED_QUERY",
    "audit_log",
    "consumer_of",
    "health_file",
    "private_query",
    "request_access",
]

CONSUMER = "lanshan-health-bureau"
CONSUMER_NAME = "Lanshan Provincial Health Bureau"
PURPOSE = "public-health-surveillance"
# ε the bureau asks for and Riverside grants, and what the demo query spends of it.
GRANTED_EPSILON = 3.0
QUERY_EPSILON = 1.0
# Riverside's rules: a query may spend at most 1 ε, all consumers together 20 ε; a
# patient adds at most as many visits as the data's own 95th percentile, estimated
# privately at publish, and counts in at most 2 districts; groups under 50 are hidden.
# Its visits are January to June at the hospitals of its own province, and it says
# so: answers have no months or districts beyond them. Its visits may be privately
# joined with Jade Pay's payments.
POLICY = f"""\
epsilon:
  per_query: 1.0
  default: 0.5
  dataset_cap: 20.0
contributions:
  groups: 2
threshold: 50
coverage:
  visit_date: {{from: {DEMO_YEAR}-01-01, to: {DEMO_YEAR}-06-30}}
  district: {{within: ["{PROVINCES[0]}"]}}
join_with: [jade-pay/payments]
"""
QUERY = "SELECT district, COUNT(*) AS visits, AVG(cost) AS avg_cost FROM {table} GROUP BY district"
# Asking for identifiers is what the policy exists to refuse.
REFUSED_QUERY = "SELECT patient_id, COUNT(*) AS visits FROM {table} GROUP BY patient_id"
RECEIPT_NAME = "receipt.json"
# The consumer's API token, so that the served exchange can be tried at once.
TOKEN_NAME = "consumer.token"
# Answer rows shown by the demo (all of them are in the JSON output).
_SHOWN_ROWS = 8


def health_file(demo: Demo) -> DemoFile:
    return next(f for f in demo.demo_manifest().files if f.standard == "health.visit")


def consumer_of(demo: Demo) -> Actor:
    actor = demo.notes.get("consumer")
    if not isinstance(actor, Actor):
        raise Conflict(
            "the demo's query step needs the consumer of the access step",
            hint="keep the `access` step before the `query` step",
        )
    return actor


def _keep_secret(path: Path, secret: str) -> Path:
    """Write ``secret`` readable by its owner only (never more, not even for a moment)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(secret + "\n")
    return path


def request_access(demo: Demo) -> dict[str, Any]:
    exchange = demo.exchange()
    entry = health_file(demo)
    ref = f"{entry.provider}/{entry.dataset}"
    accounts = exchange.accounts
    try:
        _, token = accounts.create(LOCAL, CONSUMER, "consumer", org_name=CONSUMER_NAME)
        created = True
    except Conflict:
        token = accounts.issue_token(LOCAL, CONSUMER)
        created = False
    token_file = _keep_secret(demo.files / TOKEN_NAME, token.secret)
    consumer = accounts.actor(CONSUMER)
    provider = accounts.actor(entry.provider)
    policy = exchange.policies.set(provider, ref, POLICY, where="the demo's policy")
    contracts = exchange.contracts
    # A consumer holds one active grant per dataset: a rebuilt demo keeps using it.
    active = [g for g in contracts.grants(consumer, active=True) if g.dataset == ref]
    if active:
        grant = active[0]
    else:
        request = contracts.request(
            consumer,
            ref,
            purpose=PURPOSE,
            epsilon=GRANTED_EPSILON,
            until=date.today() + timedelta(days=90),
            note="weekly outpatient load per district",
            actions=("aggregate-query", "private-join"),
        )
        grant = contracts.grant(provider, request.ref, epsilon=GRANTED_EPSILON, max_queries=50)
    demo.notes["consumer"] = consumer
    return {
        "consumer": CONSUMER,
        "consumer_name": CONSUMER_NAME,
        "consumer_created": created,
        "token_file": str(token_file),
        "dataset": ref,
        "policy_digest": policy.policy.digest,
        "request": f"REQ-{grant.request_id}",
        "grant": grant.ref,
        "grant_reused": bool(active),
        "purpose": grant.purpose,
        "epsilon": grant.epsilon,
        "valid_until": grant.valid_until.isoformat(),
    }


def private_query(demo: Demo) -> dict[str, Any]:
    consumer = consumer_of(demo)
    entry = health_file(demo)
    table = DatasetRef(entry.provider, entry.dataset).sql_name
    queries = demo.exchange().queries
    sql = QUERY.format(table=table)
    try:
        result = queries.run(consumer, sql, epsilon=QUERY_EPSILON)
    except (BudgetExhausted, ContractViolation, PolicyViolation) as refusal:
        return {"sql": sql, "answered": False, "refusal": refusal.to_dict()["error"]}
    receipt = demo.files / RECEIPT_NAME
    receipt.write_bytes(result.receipt.to_bytes())
    demo.notes["receipt"] = receipt
    refused_sql = REFUSED_QUERY.format(table=table)
    try:
        queries.run(consumer, refused_sql, epsilon=QUERY_EPSILON)
        refused: dict[str, Any] = {"sql": refused_sql, "refused": False}
    except PolicyViolation as refusal:
        refused = {"sql": refused_sql, "refused": True, **refusal.to_dict()["error"]}
    return {
        "sql": sql,
        "answered": True,
        "result": answer_body(result.to_dict()),
        "rows_shown": _SHOWN_ROWS,
        "receipt": str(receipt),
        "refused_query": refused,
    }


def audit_log(demo: Demo) -> dict[str, Any]:
    node = demo.opened()
    log = node.log
    head = log.sign_head()
    checked = log.check()
    receipt = demo.notes.get("receipt")
    verified = None
    if receipt is not None:
        verified = verify_receipt(receipt.read_bytes(), node.verify_key).index
    kinds: dict[str, int] = {}
    for _, entry in log.entries():
        kinds[entry["kind"]] = kinds.get(entry["kind"], 0) + 1
    return {
        "entries": head.size,
        "root": head.root.hex(),
        "head_time": head.time,
        "kinds": kinds,
        "verified_entries": checked.entries,
        "receipt_verified_at_index": verified,
        "recent": [
            {k: entry.get(k) for k in ("kind", "actor", "dataset", "outcome", "epsilon")}
            | {"index": index}
            for index, entry in log.search(limit=5)
        ],
    }
