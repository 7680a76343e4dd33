"""The demo's private join: hospital visits and card payments, linked on resident numbers.

Riverside Hospitals and Jade Pay both draw their people from the demo's shared
population and record them by resident number (each in its own local format, which
their mappings bring to one canonical form). Both policies allow the join; the
health bureau holds a grant on each for ``private-join`` and asks how many people who
paid at hospitals and pharmacies also visited Riverside's outpatient clinics, by age
band. Neither holder sees the other's resident numbers; the bureau sees only noise.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from entrepot.demo._consuming import CONSUMER, PURPOSE, consumer_of, health_file
from entrepot.demo._state import Demo
from entrepot.demo.manifest import DemoFile
from entrepot.errors import BudgetExhausted, ContractViolation, PolicyViolation
from entrepot.vault import DatasetRef

__all__ = ["JOIN_EPSILON", "JOIN_QUERY", "PAYMENTS_POLICY", "private_join"]

# ε the join spends on each of its two datasets.
JOIN_EPSILON = 0.5
GRANTED_EPSILON = 2.0
# Jade Pay's rules: its payments may be joined with outpatient visits only; a payer
# adds at most 10 payments in total and counts in at most 2 groups; groups under 20
# are hidden.
PAYMENTS_POLICY = """\
epsilon:
  per_query: 1.0
  dataset_cap: 10.0
contributions:
  rows_per_unit: 10
  groups: 2
threshold: 20
join_with: [health.visit]
"""
JOIN_QUERY = (
    "SELECT v.age_band, COUNT(DISTINCT v.patient_id) AS people "
    "FROM {visits} v JOIN {payments} p ON v.patient_id = p.person_id "
    "WHERE p.merchant_sector = 'Q' GROUP BY v.age_band"
)
_SHOWN_ROWS = 8


def _payments_file(demo: Demo) -> DemoFile:
    return next(f for f in demo.demo_manifest().files if f.standard == "payments.transaction")


def private_join(demo: Demo) -> dict[str, Any]:
    exchange = demo.exchange()
    consumer = consumer_of(demo)
    visits, payments = health_file(demo), _payments_file(demo)
    ref = f"{payments.provider}/{payments.dataset}"
    provider = exchange.accounts.actor(payments.provider)
    exchange.policies.set(provider, ref, PAYMENTS_POLICY, where="the demo's policy")
    contracts = exchange.contracts
    if not [g for g in contracts.grants(consumer, active=True) if g.dataset == ref]:
        request = contracts.request(
            consumer,
            ref,
            purpose=PURPOSE,
            epsilon=GRANTED_EPSILON,
            until=date.today() + timedelta(days=90),
            actions=("private-join",),
            note="hospital and pharmacy spending of outpatients",
        )
        contracts.grant(provider, request.ref, epsilon=GRANTED_EPSILON, max_queries=20)
    sql = JOIN_QUERY.format(
        visits=DatasetRef(visits.provider, visits.dataset).sql_name,
        payments=DatasetRef(payments.provider, payments.dataset).sql_name,
    )
    try:
        result = exchange.queries.run(
            consumer,
            sql,
            epsilon=JOIN_EPSILON,
            progress=lambda step, done, total: demo.reporter.progress(
                f"private join: {step}", done, total
            ),
        )
    except (BudgetExhausted, ContractViolation, PolicyViolation) as refusal:
        return {"sql": sql, "answered": False, "refusal": refusal.to_dict()["error"]}
    from entrepot.client.local import answer_body

    return {
        "sql": sql,
        "consumer": CONSUMER,
        "answered": True,
        "result": answer_body(result.to_dict()),
        "rows_shown": _SHOWN_ROWS,
    }
