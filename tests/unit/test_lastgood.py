"""What is in force while files are broken: each file on its own, its last good version if it still fits."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from failover.domain import lastgood, runbooks
from failover.domain.detection import config as detection
from failover.domain.lastgood import LAST_GOOD, NONE, Snapshot
from tests.unit.test_loaders import CONTACTS, GOOD_RUNBOOK, make_tree

SAVED = dt.datetime(2026, 11, 27, 16, 55, tzinfo=dt.UTC)


def remembered(config: Path, books: Path) -> lastgood.LastGood:
    """Load the tree once as a process would, and answer with what it found good."""
    good = runbooks.assemble(config, books).good
    good.update(detection.assemble(config).good)
    return lambda key: Snapshot(good[key], SAVED) if key in good else None


def test_a_healthy_tree_is_all_current_and_all_remembered(tmp_path: Path) -> None:
    config, books = make_tree(tmp_path)
    loaded = runbooks.assemble(config, books)
    assert loaded.broken == () and loaded.versions == {"good": "current"}
    assert set(loaded.good) == {"config/contacts.yaml", "runbooks/good.yaml", "templates/email/hello.txt"}


def test_each_broken_file_falls_back_on_its_own(tmp_path: Path) -> None:
    config, books = make_tree(
        tmp_path, runbooks_={"good.yaml": GOOD_RUNBOOK, "other.yaml": GOOD_RUNBOOK.replace("id: good", "id: other")}
    )
    last_good = remembered(config, books)
    (books / "other.yaml").write_text(GOOD_RUNBOOK.replace("id: good", "id: other").replace("title: Good", "title: [x"))
    (books / "templates" / "email" / "hello.txt").write_text("Hello {{ person.name ")
    (config / "contacts.yaml").write_text(CONTACTS.replace('"+12025550102"', '"0102"'))
    (books / "new.yaml").write_text("id: new\n")
    loaded = runbooks.assemble(config, books, last_good)
    assert loaded.catalog is not None
    assert loaded.versions == {"good": "current", "other": LAST_GOOD}  # good.yaml itself is fine
    assert loaded.catalog.contacts.person("bob").phone == "+12025550102"  # type: ignore[union-attr]
    assert loaded.catalog.templates.source_of("email/hello.txt")[0] == "Hello {{ person.name }}"
    outcome = {b.key: (b.in_force, b.saved_at, b.runbook_id) for b in loaded.broken}
    assert outcome == {
        "config/contacts.yaml": (LAST_GOOD, SAVED, None),
        "runbooks/other.yaml": (LAST_GOOD, SAVED, "other"),
        "templates/email/hello.txt": (LAST_GOOD, SAVED, None),
        "runbooks/new.yaml": (NONE, None, None),
    }
    assert all(b.problems for b in loaded.broken) and "config/contacts.yaml" not in loaded.good


def test_a_last_good_runbook_that_no_longer_fits_the_contacts_is_not_used(tmp_path: Path) -> None:
    config, books = make_tree(tmp_path)
    last_good = remembered(config, books)
    (books / "good.yaml").write_text(GOOD_RUNBOOK.replace("title: Good", "title: [x"))
    (config / "contacts.yaml").write_text(CONTACTS.replace("leads: {description: Leads}", "").replace(", leads]", "]"))
    loaded = runbooks.assemble(config, books, last_good)
    assert loaded.catalog is not None and loaded.catalog.runbooks == {}  # it pages group:leads, which is gone
    (broken,) = loaded.broken
    assert broken.in_force == NONE and "unavailable" in broken.outcome()


def test_without_any_good_contacts_nothing_is_planned(tmp_path: Path) -> None:
    config, books = make_tree(tmp_path, contacts="people: [\n")
    loaded = runbooks.assemble(config, books)
    assert loaded.catalog is None
    assert [b.key for b in loaded.broken if b.in_force == NONE] == ["config/contacts.yaml"]
    assert "runbooks/good.yaml" not in loaded.good  # never remembered against contacts that are not in force


def test_detection_falls_back_to_its_last_good_policy(tmp_path: Path) -> None:
    config, books = make_tree(tmp_path)
    (config / "detection.yaml").write_text('watch: ["Exchange Online"]\nconfirm: {hold: 5m}\n')
    last_good = remembered(config, books)
    (config / "detection.yaml").write_text('watch: ["Exchange Online"]\nconfirm: {hold: soon}\n')
    loaded = detection.assemble(config, last_good)
    assert loaded.config is not None and loaded.config.confirm.hold == dt.timedelta(minutes=5)
    assert loaded.broken is not None and loaded.broken.in_force == LAST_GOOD
    assert [p.line for p in loaded.problems] == [2]
    assert detection.assemble(config).config is None  # without a last good version: nothing in force
