"""The people table as the catalog's directory: who planning, replies, escalation and fallback reach.

:class:`PeopleDirectory` answers the same questions as contacts.yaml in memory
(``person``, ``members``, ``by_phone``, ``groups``) with small queries, so no
process holds the whole roster: a worker that looks up the people of one
batch costs the same at 1,000 people and at 50,000. Removed people are still
found by id (and, failing an active match, by phone): an activation running
when they left keeps its recipients, and their answers still count.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from failover.db import Database
from failover.domain.contacts import Group, Person
from failover.domain.people import Record, as_person, person_of
from failover.models_people import PersonGroup, PersonRow

LOOKUP_CHUNK = 500  # ids per IN (...) query
ATTRIBUTES = (PersonRow.department, PersonRow.office_location, PersonRow.job_title, PersonRow.language)


def record_of(row: PersonRow) -> Record:
    return Record(
        id=row.id,
        name=row.name,
        phone=row.phone,
        email=row.email,
        department=row.department,
        office_location=row.office_location,
        job_title=row.job_title,
        language=row.language,
        groups=tuple(row.listed_groups or ()),
    )


def groups_of(session: Session, ids: Iterable[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    wanted = list(ids)
    for start in range(0, len(wanted), LOOKUP_CHUNK):
        chunk = wanted[start : start + LOOKUP_CHUNK]
        for person_id, group in session.execute(
            select(PersonGroup.person_id, PersonGroup.group_name)
            .where(PersonGroup.person_id.in_(chunk))
            .order_by(PersonGroup.person_id, PersonGroup.position)
        ):
            found[person_id].append(group)
    return found


class PeopleDirectory:
    """Read-only view of the people table; ``groups`` are the group names configured (lists and rules)."""

    def __init__(self, database: Database, groups: Mapping[str, Group]) -> None:
        self.database = database
        self._groups = dict(groups)

    @property
    def groups(self) -> Mapping[str, Group]:
        return self._groups

    def person(self, person_id: str) -> Person | None:
        with self.database.reading() as session:
            row = session.get(PersonRow, person_id)
            if row is None:
                return None
            return as_person(record_of(row), groups_of(session, [row.id]).get(row.id, ()))

    def many(self, ids: Iterable[str]) -> dict[str, Person]:
        """Several people by id at once (pages showing thousands of recipients)."""
        wanted = list(dict.fromkeys(ids))
        found: dict[str, Person] = {}
        with self.database.reading() as session:
            for start in range(0, len(wanted), LOOKUP_CHUNK):
                chunk = wanted[start : start + LOOKUP_CHUNK]
                rows = session.scalars(select(PersonRow).where(PersonRow.id.in_(chunk))).all()
                member = groups_of(session, [row.id for row in rows])
                for row in rows:
                    found[row.id] = as_person(record_of(row), member.get(row.id, ()))
        return found

    def members(self, group: str) -> list[Person]:
        """Active members, as plain columns (no ORM objects): 50,000 of them in a second or two."""
        columns = (PersonRow.id, PersonRow.name, PersonRow.phone, PersonRow.email, *ATTRIBUTES)
        with self.database.reading() as session:
            rows = session.execute(
                select(*columns)
                .join(PersonGroup, PersonGroup.person_id == PersonRow.id)
                .where(PersonGroup.group_name == group, PersonRow.removed_at.is_(None))
                .order_by(PersonRow.id)
            ).all()
            member: dict[str, list[str]] = defaultdict(list)
            for person_id, name in session.execute(
                select(PersonGroup.person_id, PersonGroup.group_name)
                .where(PersonGroup.person_id.in_(select(PersonGroup.person_id).where(PersonGroup.group_name == group)))
                .order_by(PersonGroup.person_id, PersonGroup.position)
            ):
                member[person_id].append(name)
        return [
            person_of(pid, name, phone, email, dept, office, title, lang, member.get(pid, ()))
            for pid, name, phone, email, dept, office, title, lang in rows
        ]

    def by_phone(self, phone: str) -> Person | None:
        with self.database.reading() as session:
            rows = session.scalars(
                select(PersonRow)
                .where(PersonRow.phone == phone)
                .order_by(PersonRow.removed_at.is_not(None), PersonRow.id)
            ).all()
            if not rows:
                return None
            row = rows[0]
            return as_person(record_of(row), groups_of(session, [row.id]).get(row.id, ()))

    @property
    def people(self) -> tuple[Person, ...]:
        """Everyone in force, loaded whole: for listings and counts, never for sending."""
        with self.database.reading() as session:
            rows = active_rows(session)
            member = groups_of(session, [row.id for row in rows])
            return tuple(as_person(record_of(row), member.get(row.id, ())) for row in rows)

    def count(self) -> int:
        from sqlalchemy import func

        with self.database.reading() as session:
            return int(
                session.scalar(select(func.count()).select_from(PersonRow).where(PersonRow.removed_at.is_(None))) or 0
            )


def active_rows(session: Session) -> list[PersonRow]:
    return list(session.scalars(select(PersonRow).where(PersonRow.removed_at.is_(None)).order_by(PersonRow.id)))
