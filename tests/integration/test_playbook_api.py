"""/api/v1/playbooks and /api/v1/activities over HTTP (in-process), on the test database."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from advocado import clock
from advocado.domain.records import CustomerRecord
from advocado.services import playbooks
from advocado.services.apikeys import create_api_key
from advocado.services.records import save_customers
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import Customer

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)

RENEWAL = {
    "name": "renewal-thanks",
    "title": {"en": "Thank renewals", "zh-CN": "感谢续费"},
    "triggers": [{"type": "renewal"}],
    "conditions": {"consent": True},
    "steps": [{"id": "tag", "add_tag": "renewed"}],
}


def bearer(engine: Engine) -> dict[str, str]:
    with unit_of_work(engine) as session:
        _, token = create_api_key(session, name="crm", scopes=["read", "write"])
        save_customers(session, [
            CustomerRecord(external_id="yes", marketing_consent=True),
            CustomerRecord(external_id="no", marketing_consent=False)])  # fmt: skip
    return {"Authorization": f"Bearer {token}"}


def test_playbooks_over_the_api(client: TestClient, engine: Engine) -> None:
    clock.set_now(T0)
    auth = bearer(engine)
    listed = client.get("/api/v1/playbooks", headers=auth).json()["items"]
    assert [p["name"] for p in listed] == ["activation-funnel"]  # the default, on a new database
    assert client.post("/api/v1/playbooks", json=RENEWAL, headers=auth).status_code == 201
    again = client.post("/api/v1/playbooks", json=RENEWAL, headers=auth)
    assert (again.status_code, again.json()["changed"]) == (200, False)

    bad = client.post("/api/v1/playbooks", headers=auth,
                      json={**RENEWAL, "steps": [{"id": "tag", "add_tag": ""}]})  # fmt: skip
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["field"] == "steps[0].add_tag"

    text = "name: x\ntriggers: [manual]\nsteps:\n  - id: a\n    wait: never\n"
    checked = client.post("/api/v1/playbooks/validate", json={"source": text}, headers=auth)
    assert checked.json()["error"] | {"reason": ""} == {
        "file": "source", "line": 5, "field": "steps[0].wait", "reason": ""}  # fmt: skip
    yaml_bad = client.post("/api/v1/playbooks", json={"source": text}, headers=auth)
    assert (yaml_bad.status_code, yaml_bad.json()["detail"][0]["line"]) == (422, 5)

    off = client.post("/api/v1/playbooks/activation-funnel/disable", headers=auth).json()
    assert off["enabled"] is False
    assert client.get("/api/v1/playbooks/nope", headers=auth).status_code == 404

    for who in ("yes", "no"):
        answer = client.post("/api/v1/activities", headers=auth, json={
            "id": f"renew-{who}", "type": "renewal", "customer_external_id": who,
            "occurred_at": "2026-12-05T08:00:00+08:00"})  # fmt: skip
        assert answer.status_code == 202, answer.text
    wrong = client.post("/api/v1/activities", headers=auth, json={
        "id": "1", "type": "birthday", "customer_external_id": "yes"})  # fmt: skip
    assert (wrong.status_code, wrong.json()["detail"][0]["field"]) == (422, "type")
    playbooks.run_once(engine, now=T0, deliver=False)
    with read_only(engine) as session:
        tags = dict(list(session.execute(select(Customer.external_id, Customer.tags))))
    assert tags == {"yes": ["renewed"], "no": []}  # the condition: consent only

    manual = client.post("/api/v1/playbooks/renewal-thanks/enrolments", headers=auth,
                         json={"customers": ["no"], "key": "k1"})  # fmt: skip
    assert manual.json() == {"enrolled": 0}  # conditions apply to manual enrolment too
    rows = client.get("/api/v1/playbooks/renewal-thanks/enrolments", headers=auth).json()
    assert [(r["customer"], r["status"]) for r in rows["items"]] == [("yes", "completed")]
