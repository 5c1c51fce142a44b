"""Publishing the snapshot: to a real S3-compatible server (moto's, started here) and to a directory.

moto runs with IAM authorisation on: the publisher's key may write the bucket,
the reader's key may only read it, so a refused upload is a real 403 from the
server, not a scripted one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer
from sqlalchemy import select

from failover.channels.s3_publish import PublishError, S3Publisher
from failover.models import AuditEvent, StatusTarget
from failover.publish.snapshot import File
from tests.conftest import SQLITE_ONLY, AuthActions
from tests.integration.statuspage.conftest import STATUS_YAML, Wired

pytestmark = [pytest.mark.integration]
BUCKET = "contoso-status"
FULL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
READ = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*"}],
}


class S3:
    def __init__(self, endpoint: str, keys: dict[str, tuple[str, str]]) -> None:
        self.endpoint, self.keys = endpoint, keys

    def client(self, who: str = "publisher") -> Any:
        key, secret = self.keys[who]
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=key,
            aws_secret_access_key=secret,
        )

    def objects(self, prefix: str = "") -> dict[str, dict[str, Any]]:
        client = self.client()
        found = {}
        for item in client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []):
            head = client.head_object(Bucket=BUCKET, Key=item["Key"])
            found[item["Key"]] = {"type": head["ContentType"], "cache": head.get("CacheControl")}
        return found

    def read(self, key: str) -> str:
        return str(self.client().get_object(Bucket=BUCKET, Key=key)["Body"].read().decode())


@pytest.fixture(scope="module")
def s3() -> Iterator[S3]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boot = {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "x",
        "aws_secret_access_key": "x",
    }
    iam = boto3.client("iam", **boot)  # type: ignore[arg-type]
    keys = {}
    for who, policy in (("publisher", FULL), ("reader", READ)):
        iam.create_user(UserName=who)
        iam.put_user_policy(UserName=who, PolicyName=who, PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=who)["AccessKey"]
        keys[who] = (key["AccessKeyId"], key["SecretAccessKey"])
    boto3.client("s3", **boot).create_bucket(Bucket=BUCKET)  # type: ignore[arg-type]
    requests.post(f"{endpoint}/moto-api/reset-auth", data=b"0", timeout=10).raise_for_status()  # IAM enforced
    try:
        yield S3(endpoint, keys)
    finally:
        requests.post(f"{endpoint}/moto-api/reset-auth", data=b"inf", timeout=10)
        server.stop()


def as_user(monkeypatch: pytest.MonkeyPatch, s3: S3, who: str) -> None:
    key, secret = s3.keys[who]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")


def targets(wired: Wired, s3: S3, site: Path, **status: Any) -> None:
    wired.write_status(
        {
            **STATUS_YAML,
            **status,
            "publish": [
                {"kind": "s3", "name": "r2", "bucket": BUCKET, "prefix": "page", "endpoint_url": s3.endpoint},
                {"kind": "directory", "path": str(site)},
            ],
        }
    )


def post(wired: Wired, title: str, body: str = "Investigating.") -> int:
    status = wired.runtime.status
    return status.open_incident(
        item=status.draft(title=title, body=body, components={"VPN": "major_outage"}), actor="alice"
    )


def target(wired: Wired, name: str) -> StatusTarget:
    with wired.runtime.database.reading() as session:
        row = session.get(StatusTarget, name)
        assert row is not None
        session.expunge(row)
        return row


@SQLITE_ONLY
def test_every_change_reaches_s3_and_the_directory_whole(
    wired: Wired, s3: S3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_user(monkeypatch, s3, "publisher")
    site = tmp_path / "site"
    targets(wired, s3, site)
    s3.client().put_object(Bucket=BUCKET, Key="elsewhere/keep.txt", Body=b"not ours")
    (site).mkdir()
    (site / "operator-notes.txt").write_text("not ours either")

    post(wired, "VPN is down")
    started = time.monotonic()
    result = wired.tick()
    readable = s3.read("page/index.html")
    latency = time.monotonic() - started
    assert result["published"] == ["r2", f"directory:{site}"] and result["failed"] == []
    assert "VPN is down" in readable and "VPN is down" in (site / "index.html").read_text()
    print(f"\npublish latency, change committed -> snapshot readable from S3: {latency * 1000:.0f} ms")

    objects = s3.objects("page/")
    assert objects["page/index.html"] == {
        "type": "text/html; charset=utf-8",
        "cache": "public, max-age=30, must-revalidate",
    }
    assert objects["page/api/v2/summary.json"]["type"] == "application/json"
    assert objects["page/feed.atom"]["type"] == "application/atom+xml"
    assert objects["page/feed.rss"]["type"] == "application/rss+xml"
    assert objects["page/badge.svg"] == {"type": "image/svg+xml", "cache": "public, max-age=60"}
    assert objects["page/status.js"]["type"] == "text/javascript; charset=utf-8"
    assert "page/components/vpn.atom" in objects
    summary = json.loads(s3.read("page/api/v2/summary.json"))
    assert summary["status"]["indicator"] == "critical" and summary["incidents"][0]["name"] == "VPN is down"
    index = (site / "index.html").read_text()
    assert (
        'href="feed.rss"' in index
        and 'src="status.js"' in index
        and 'href="/status' not in index.replace('href="https://failover.example/status/subscribe"', "")
    )
    assert target(wired, "r2").latency_ms is not None

    # Nothing changed: nothing is published until the heartbeat is due.
    assert wired.tick()["published"] == []

    # A component leaves the page: its feeds disappear from both targets, nobody else's files do.
    targets(wired, s3, site, components=[c for c in STATUS_YAML["components"] if c["name"] != "VPN"])
    outcomes = wired.runtime.status.publish(force=True)
    assert all(o.ok for o in outcomes) and outcomes[0].counts and outcomes[0].counts["deleted"] == 2
    assert "page/components/vpn.atom" not in s3.objects("page/")
    assert not (site / "components" / "vpn.atom").exists() and (site / "operator-notes.txt").exists()
    assert s3.read("elsewhere/keep.txt") == "not ours"


@SQLITE_ONLY
def test_a_refused_upload_leaves_the_published_page_whole_and_is_retried(
    wired: Wired, s3: S3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_user(monkeypatch, s3, "publisher")
    site = tmp_path / "site"
    targets(wired, s3, site)
    post(wired, "Printing is down")
    wired.tick()
    before = {key: s3.read(key) for key in ("page/index.html", "page/api/v2/summary.json")}

    as_user(monkeypatch, s3, "reader")  # the key may read the bucket, not write it: 403 AccessDenied
    post(wired, "Wi-Fi is down too")
    result = wired.tick()
    assert result["failed"] == ["r2"] and result["published"] == [f"directory:{site}"]  # the other target goes on
    assert {key: s3.read(key) for key in before} == before  # readers still see the whole previous page
    assert "Wi-Fi is down too" in (site / "index.html").read_text()
    row = target(wired, "r2")
    assert row.failures == 1 and row.failed_total == 1 and "403" in (row.last_error or "")
    assert row.next_attempt_at is not None
    assert wired.tick()["failed"] == []  # backing off: no hammering of a refusing bucket
    html = wired.client.get("/status").get_data(as_text=True)
    assert "Wi-Fi is down too" in html  # the live page never waits for a target
    AuthActions(wired.client, wired.runtime).login("viewer")
    dashboard = wired.client.get("/").get_data(as_text=True)
    assert "failing (1 in a row, 1 in all)" in dashboard and "AccessDenied" in dashboard  # said where operators look

    as_user(monkeypatch, s3, "publisher")
    outcomes = wired.runtime.status.publish(force=True)  # `failover status publish`
    assert all(o.ok for o in outcomes)
    assert "Wi-Fi is down too" in s3.read("page/index.html")
    assert target(wired, "r2").failures == 0
    with wired.runtime.database.reading() as session:
        actions = list(session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("status.publish%"))))
    assert actions == ["status.publish_failed", "status.publish_recovered"]


def test_new_objects_first_and_the_index_last(s3: S3) -> None:
    client = s3.client()
    order: list[str] = []
    client.meta.events.register("before-call.s3.PutObject", lambda params, **_: order.append(params["url_path"]))
    files = [
        File("index.html", b"<p>new</p>", "text/html; charset=utf-8", "no-cache"),
        File("a.json", b"{}", "application/json", "no-cache"),
        File("z/b.json", b"[]", "application/json", "no-cache"),
    ]
    S3Publisher(bucket=BUCKET, prefix="order", client=client).publish(files)
    assert order[-1].endswith("/order/index.html") and len(order) == 3
    order.clear()
    counts = S3Publisher(bucket=BUCKET, prefix="order", client=client).publish(files)
    assert counts == {"written": 1, "unchanged": 2, "deleted": 0}  # unchanged objects are not rewritten
    with pytest.raises(PublishError, match="NoSuchBucket"):
        S3Publisher(bucket="no-such-bucket", client=client).publish(files)


def test_a_target_that_disappears_mid_publish_keeps_the_old_index(s3: S3) -> None:
    from botocore.exceptions import EndpointConnectionError

    client = s3.client()
    old = [File("index.html", b"<p>old</p>", "text/html; charset=utf-8", "no-cache")]
    S3Publisher(bucket=BUCKET, prefix="gone", client=client).publish(old)
    puts: list[str] = []

    def vanish(params: dict[str, Any], **_: Any) -> None:
        puts.append(params["url_path"])
        if len(puts) == 2:
            raise EndpointConnectionError(endpoint_url=s3.endpoint)

    client.meta.events.register("before-call.s3.PutObject", vanish)
    new = [File(f"f{n}.json", b"{}", "application/json", "no-cache") for n in range(3)]
    with pytest.raises(PublishError) as refused:
        S3Publisher(bucket=BUCKET, prefix="gone", client=client).publish(
            [*new, File("index.html", b"<p>new</p>", "text/html", "x")]
        )
    assert refused.value.code == "network"
    assert s3.read("gone/index.html") == "<p>old</p>"


@SQLITE_ONLY
def test_the_heartbeat_republishes_a_quiet_page_so_readers_can_tell_it_is_alive(wired: Wired, tmp_path: Path) -> None:
    from freezegun import freeze_time

    site = tmp_path / "site"
    wired.write_status({**STATUS_YAML, "publish": [{"kind": "directory", "name": "site", "path": str(site)}]})
    with freeze_time("2026-12-03 08:00:00"):
        assert wired.tick()["published"] == ["site"]  # never published: due at once
    stamp = 'data-generated="2026-12-03T08:00:00.000Z"'
    assert stamp in (site / "index.html").read_text()
    with freeze_time("2026-12-03 08:04:00"):
        assert wired.tick()["published"] == []  # quiet and within FAILOVER_STATUS_HEARTBEAT (300 s)
    with freeze_time("2026-12-03 08:05:01"):
        assert wired.tick()["published"] == ["site"]
    assert 'data-generated="2026-12-03T08:05:01.000Z"' in (site / "index.html").read_text()
    assert 'data-heartbeat="300"' in (site / "index.html").read_text()  # what status.js measures staleness by


def test_a_slow_target_stops_before_the_index_within_its_budget(s3: S3) -> None:
    client = s3.client()
    S3Publisher(bucket=BUCKET, prefix="slow", client=client).publish([File("index.html", b"old", "text/html", "x")])
    ticks = iter(range(0, 1000, 25))  # every look at the clock: 25 s later
    slow = S3Publisher(bucket=BUCKET, prefix="slow", client=client, budget=60, clock=lambda: float(next(ticks)))
    files = [File(f"f{n}.json", b"{}", "application/json", "x") for n in range(5)]
    with pytest.raises(PublishError, match="slower than 60 s") as refused:
        slow.publish([*files, File("index.html", b"new", "text/html", "x")])
    assert refused.value.code == "slow" and s3.read("slow/index.html") == "old"


@SQLITE_ONLY
def test_status_publish_by_hand(wired: Wired, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from failover.cli import main

    assert "no publish targets configured" in CliRunner().invoke(main, ["status", "publish"]).output
    site = tmp_path / "site"
    wired.write_status({**STATUS_YAML, "publish": [{"kind": "directory", "name": "site", "path": str(site)}]})
    result = CliRunner().invoke(main, ["status", "publish"])
    assert result.exit_code == 0 and "site: revision 1 published" in result.output, result.output
    assert (site / "api" / "v2" / "summary.json").is_file()
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the directory should be")
    wired.write_status({**STATUS_YAML, "publish": [{"kind": "directory", "name": "site", "path": str(blocked)}]})
    refused = CliRunner().invoke(main, ["status", "publish"])
    assert refused.exit_code == 1 and "site: NOT published" in refused.output, refused.output
