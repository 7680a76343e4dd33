"""What the portal answers to input it must refuse: a page (or a script's JSON) with the
refusal's status, message and hint; never a server error, never more than the API takes,
and never figures the account's contracts do not let it see.

Every request goes to a live `entrepot serve` over httpx, signed in as each account.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from tests.portal.pages import Signed

DATASET = "riverside-hospitals/outpatient-visits"
TABLE = "riverside_hospitals.outpatient_visits"
ALERT = re.compile(r'role="alert"[^>]*>(.*?)</div>', re.S)


def _alert(answer: httpx.Response) -> str:
    """The page's refusal as text."""
    found = ALERT.search(answer.text)
    assert found is not None, answer.text[:1000]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1))).strip()


@pytest.fixture(scope="module")
def signed(served: Any) -> Iterator[dict[str, Signed]]:
    made = {
        account: Signed(served.url, served.tokens[account])
        for account in ("riverside-admin", "lanshan-health-bureau", "city-analyst", "log-auditor")
    }
    yield made
    for one in made.values():
        one.http.close()


def test_a_refused_decision_answers_with_the_refusal_s_status(
    signed: dict[str, Signed],
) -> None:
    provider = signed["riverside-admin"]
    for path, fields, status, message in (
        ("/provider/requests/REQ-999999/grant", {"epsilon": "1"}, 404, "no access request"),
        ("/provider/requests/REQ-999999/refuse", {"reason": "no"}, 404, "no access request"),
        ("/provider/grants/GRANT-999999/revoke", {"reason": "no"}, 404, "no grant"),
        ("/provider/requests/REQ-1/grant", {"epsilon": "many"}, 400, "epsilon"),
    ):
        answer = provider.form(path, **fields)
        assert answer.status_code == status, (path, answer.status_code)
        assert answer.headers["content-type"].startswith("text/html")
        assert message in _alert(answer), path
    # A reason longer than the API takes: refused, and the request waits still.
    analyst = signed["city-analyst"]
    asked = analyst.form(
        f"/datasets/{DATASET}/access",
        purpose="public-health-surveillance",
        epsilon="1",
        until=(date.today() + timedelta(days=90)).isoformat(),
    )
    sent = re.search(r"(REQ-\d+) sent to the provider", asked.text)
    assert sent is not None, asked.text[:1000]
    refuse = f"/provider/requests/{sent.group(1)}/refuse"
    answer = provider.form(refuse, reason="r" * 2001)
    assert answer.status_code == 400
    assert "the reason has 2,001 characters, more than the 2,000" in _alert(answer)
    answer = provider.form(refuse, reason="r" * 2000)
    assert answer.status_code == 200
    assert f"{sent.group(1)} refused" in answer.text
    # A plain form without its file: the publish refused, as a page with its status.
    answer = provider.form("/provider/publish", title="visits")
    assert answer.status_code == 400
    assert "choose the file to publish" in _alert(answer)


def test_a_policy_nested_deeper_than_any_stack_is_refused_as_a_page(
    signed: dict[str, Signed],
) -> None:
    provider = signed["riverside-admin"]
    for document in ("a: " + "[" * 5000, "a: " + "{a: " * 5000):
        answer = provider.form(f"/provider/policy/{DATASET}", document=document)
        assert answer.status_code == 400, answer.text[:500]
        assert "nested more than" in _alert(answer)
    # The same document for another provider's dataset: not this account's, and no error.
    answer = provider.form("/provider/policy/highland-health/clinic-visits", document="a: [[[[")
    assert answer.status_code == 404
    assert "no dataset highland-health/clinic-visits" in _alert(answer)
    assert "data-error-line" not in answer.text
    assert provider.http.get(f"/provider/policy/{DATASET}").status_code == 200


def test_the_publish_form_takes_no_more_than_the_api(
    signed: dict[str, Signed], served: Any
) -> None:
    provider = signed["riverside-admin"]
    raw = b"visit_id,patient_id\nV1,P1\n"
    too_long = {"title": "t" * 201, "description": "d" * 5001}
    for name, value in too_long.items():
        fields = {"standard": "health.visit", "title": "Visits", "dataset": f"long-{name}"}
        fields[name] = value
        # The API refuses the field by its declared limit ...
        api = httpx.post(
            f"{served.url}/v1/datasets",
            data=fields,
            files={"file": ("visits.csv", raw, "text/csv")},
            headers={"Authorization": f"Bearer {served.tokens['riverside-admin']}"},
            timeout=60,
        )
        assert api.status_code == 400, api.text[:500]
        # ... and so does the portal, to its script and to a plain form.
        scripted = provider.http.post(
            "/provider/publish",
            data=fields,
            files={"file": ("visits.csv", raw, "text/csv")},
            headers={"X-CSRF-Token": provider.csrf},
        )
        assert scripted.status_code == 400, scripted.text[:500]
        refusal = scripted.json()["error"]
        assert refusal["code"] == "invalid_input"
        assert name in refusal["message"]
        assert refusal["hint"]
        plain = provider.http.post(
            "/provider/publish",
            data={**fields, "csrf": provider.csrf},
            files={"file": ("visits.csv", raw, "text/csv")},
        )
        assert plain.status_code == 400
        assert name in _alert(plain)
        missing = provider.http.get(f"/datasets/riverside-hospitals/long-{name}")
        assert missing.status_code == 404


def test_an_estimate_needs_the_contract_its_query_would(signed: dict[str, Signed]) -> None:
    sql = f"SELECT sex, COUNT(*) AS visits FROM {TABLE} GROUP BY sex"
    # The bureau holds an aggregate-query grant on the visits: the expected error shows.
    bureau = signed["lanshan-health-bureau"]
    answer = bureau.script("/portal/estimate", {"sql": sql, "epsilon": 0.5})
    assert answer.status_code == 200, answer.text[:500]
    assert answer.json()["aggregates"][0]["name"] == "visits"
    # The analyst holds none: refused by the contract's clause, no figure of the version.
    analyst = signed["city-analyst"]
    answer = analyst.script("/portal/estimate", {"sql": sql, "epsilon": 0.5})
    assert answer.status_code == 403, answer.text[:500]
    refusal = answer.json()["error"]
    assert (refusal["code"], refusal["clause"]) == ("contract_violation", "grant")
    assert set(answer.json()) == {"error"}
    # A grant for joins only does not let the bureau price an aggregate query either.
    payments = "SELECT COUNT(*) AS n FROM jade_pay.payments"
    answer = bureau.script("/portal/estimate", {"sql": payments, "epsilon": 0.5})
    assert answer.status_code == 403
    assert answer.json()["error"]["clause"] == "action"


def test_a_page_for_another_role_names_the_account_s_role(signed: dict[str, Signed]) -> None:
    answer = signed["log-auditor"].http.get("/query")
    assert answer.status_code == 403
    assert "an auditor account has no use for this page" in _alert(answer)


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/transparency?index=-1", "query.index"),
        ("/?nodes=x", "query.nodes"),
        ("/usage?month=x", "query.month"),
        ("/?q=" + "q" * 501, "query.q"),
    ],
)
def test_an_address_whose_parameters_do_not_pass_is_refused_as_a_page(
    signed: dict[str, Signed], path: str, field: str
) -> None:
    answer = signed["lanshan-health-bureau"].http.get(path)
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("text/html")
    shown = _alert(answer)
    assert field in shown
    assert "/openapi.json" not in shown
