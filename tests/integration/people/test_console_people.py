"""The People page: a CSV upload is a preview until an admin confirms it; details are masked unless revealed."""

from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import select

from failover.models import AuditEvent
from failover.runtime import Runtime
from tests.conftest import SQLITE_ONLY, AuthActions, csrf_from

pytestmark = [pytest.mark.integration, SQLITE_ONLY]


def test_upload_previews_then_applies_and_bad_files_change_nothing(client, auth: AuthActions, runtime: Runtime) -> None:  # type: ignore[no-untyped-def]
    auth.login("admin")
    page = client.get("/people").get_data(as_text=True)
    assert "8 people in force" in page and "+12025550101" not in page  # demo contacts, numbers masked
    token = csrf_from(page)
    bad = b"id,name,phone\nz1,Zed,+1 202 555 0150\nz1,Again,\n"
    response = client.post(
        "/people/import",
        data={"csrf_token": token, "file": (io.BytesIO(bad), "hr.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert "hr.csv:3: duplicate id &#39;z1&#39; (also on line 2)" in response.get_data(as_text=True)
    latin1 = "id,name\nz2,Zoë\n".encode("latin-1")
    response = client.post(
        "/people/import",
        data={"csrf_token": token, "file": (io.BytesIO(latin1), "x.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400 and "not UTF-8" in response.get_data(as_text=True)

    good = b"id,name,phone,groups\nz1,Zed,+1 202 555 0150,oncall\n"
    response = client.post(
        "/people/import",
        data={"csrf_token": token, "file": (io.BytesIO(good), "hr.csv")},
        content_type="multipart/form-data",
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "added 1, changed 0, removed 0, unchanged 8" in page
    assert runtime.people.status()["people"] == 8  # a preview only
    digest = re.search(r'name="digest" value="([0-9a-f]{64})"', page)
    assert digest
    response = client.post(
        "/people/import/confirm", data={"csrf_token": token, "digest": digest.group(1), "name": "hr.csv"}
    )
    assert response.status_code == 302
    assert runtime.people.status()["people"] == 9
    assert "z1" in {p.id for p in runtime.config.catalog().contacts.members("oncall")}


def test_a_person_is_masked_until_an_admin_reveals_them_which_is_audited(
    client, auth: AuthActions, runtime: Runtime
) -> None:  # type: ignore[no-untyped-def]
    auth.login("viewer")
    runtime.config.catalog()
    page = client.get("/people/person/alice").get_data(as_text=True)
    assert "Alice Example" in page and "+12025550101" not in page and "alice@personal.example" not in page
    assert client.get("/people/person/alice?reveal=1").status_code == 403
    assert client.get("/people?q=ali").get_data(as_text=True).count("/people/person/") == 1
    dashboard = client.get("/").get_data(as_text=True)
    assert 'id="people-card"' in dashboard and "8 in force" in dashboard
    auth.logout()
    auth.login("admin")
    page = client.get("/people/person/alice?reveal=1").get_data(as_text=True)
    assert "+12025550101" in page
    with runtime.database.reading() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "people.revealed")).one()
        assert event.actor == "admin" and event.target_id == "alice"
