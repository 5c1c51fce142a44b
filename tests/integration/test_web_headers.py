"""Headers and small things (issue 11, item 10): HSTS, the status page's links, the feed's self link, Allow on 405."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from failover.cli import main
from failover.runtime import Runtime
from failover.settings import load_settings
from failover.web import create_app

PUBLIC = "https://failover.example.org"


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path / 'failover.db'}"


@pytest.fixture
def https_app(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    """The app as deployed at an https address (same database as ``runtime``)."""
    monkeypatch.setenv("FAILOVER_PUBLIC_URL", PUBLIC)
    deployed = Runtime(load_settings())
    yield create_app(runtime=deployed, test_config={"TESTING": True})
    deployed.close()


def test_hsts_when_the_public_url_is_https(https_app: Flask, client: FlaskClient) -> None:
    for path in ("/login", "/status", "/healthz", "/nothing-here"):
        response = https_app.test_client().get(path, base_url=PUBLIC)
        assert response.headers["Strict-Transport-Security"] == "max-age=31536000", path
    assert "Strict-Transport-Security" not in client.get("/login").headers  # plain http: a header would mislead


def links(html: str) -> list[str]:
    return re.findall(r'href="((?:[^"]*)(?:feed\.atom|status\.json))"', html)


def test_every_link_on_the_status_page_resolves(client: FlaskClient) -> None:
    page = client.get("/status")
    found = links(page.get_data(as_text=True))
    assert len(found) == 6  # <link rel=alternate>, the JSON and Atom links in the footer, one Atom per component
    for href in found:
        target = urljoin("http://localhost/status", href)
        assert client.get(target).status_code == 200, f"{href} -> {target}"


def test_the_exported_status_page_links_to_its_own_files(runtime: Runtime, tmp_path: Path) -> None:
    out = tmp_path / "site"
    result = CliRunner().invoke(main, ["status", "export", str(out)])
    assert result.exit_code == 0, result.output
    for href in links((out / "index.html").read_text()):
        assert (out / href).is_file(), href


def test_the_feed_names_itself_by_the_public_url_not_the_host_header(https_app: Flask) -> None:
    response = https_app.test_client().get("/status/feed.atom", headers={"Host": "evil.example"})
    feed = ET.fromstring(response.data)
    ns = {"a": "http://www.w3.org/2005/Atom"}
    assert feed.find("a:link[@rel='self']", ns).get("href") == f"{PUBLIC}/status/feed.atom"  # type: ignore[union-attr]
    assert feed.findtext("a:id", namespaces=ns) == f"{PUBLIC}/status/feed.atom"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/status", {"GET", "HEAD", "OPTIONS"}),
        ("PUT", "/login", {"GET", "HEAD", "OPTIONS", "POST"}),
        ("DELETE", "/api/v1/notices/1", {"GET", "HEAD", "OPTIONS", "PATCH"}),
    ],
)
def test_405_says_which_methods_are_allowed(client: FlaskClient, method: str, path: str, allowed: set[str]) -> None:
    response = client.open(path, method=method)
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["Allow"].split(",")} == allowed
