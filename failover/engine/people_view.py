"""What the console's People pages read: a searchable roster, one person's messages, snapshot history.

Phone numbers and addresses leave here masked unless ``reveal`` is asked for
(admins only, and audited by the view).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from failover.engine.directory import groups_of
from failover.engine.queries import iso
from failover.models import Activation, Answer, Delivery
from failover.models_people import PeopleSnapshot, PersonGroup, PersonRow
from failover.privacy import mask_email, mask_phone

PAGE = 100


def listing(session: Session, *, q: str = "", group: str = "", page: int = 1) -> dict[str, Any]:
    query = select(PersonRow).where(PersonRow.removed_at.is_(None))
    if q:
        like = f"%{q.strip().casefold()}%"
        query = query.where(or_(func.lower(PersonRow.id).like(like), func.lower(PersonRow.name).like(like)))
    if group:
        query = query.where(PersonRow.id.in_(select(PersonGroup.person_id).where(PersonGroup.group_name == group)))
    total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    rows = session.scalars(query.order_by(PersonRow.id).offset((max(page, 1) - 1) * PAGE).limit(PAGE)).all()
    member = groups_of(session, [r.id for r in rows])
    return {
        "total": total,
        "page": max(page, 1),
        "pages": max(1, -(-total // PAGE)),
        "people": [
            {
                "id": r.id,
                "name": r.name,
                "phone": mask_phone(r.phone) if r.phone else None,
                "email": mask_email(r.email) if r.email else None,
                "groups": member.get(r.id, []),
                "language": r.language,
                "verified": r.phone_verified_at is not None,
                "sources": r.sources,
            }
            for r in rows
        ],
    }


def detail(session: Session, person_id: str, *, reveal: bool = False) -> dict[str, Any] | None:
    row = session.get(PersonRow, person_id)
    if row is None:
        return None
    deliveries = session.execute(
        select(Delivery, Activation.runbook_id)
        .join(Activation, Activation.id == Delivery.activation_id)
        .where(Delivery.person_id == person_id)
        .order_by(Delivery.id.desc())
        .limit(50)
    ).all()
    answers = session.scalars(select(Answer).where(Answer.person_id == person_id).order_by(Answer.id.desc()).limit(50))
    return {
        "id": row.id,
        "name": row.name,
        "phone": row.phone if reveal else (mask_phone(row.phone) if row.phone else None),
        "email": row.email if reveal else (mask_email(row.email) if row.email else None),
        "revealed": reveal,
        "department": row.department,
        "office_location": row.office_location,
        "job_title": row.job_title,
        "language": row.language,
        "groups": groups_of(session, [row.id]).get(row.id, []),
        "removed_at": iso(row.removed_at),
        "phone_verified_at": iso(row.phone_verified_at),
        "messages": [
            {
                "activation_id": d.activation_id,
                "runbook": runbook,
                "step": d.step,
                "channel": d.channel,
                "status": d.status,
                "error_code": d.error_code,
                "sent_at": iso(d.sent_at),
            }
            for d, runbook in deliveries
        ],
        "answers": [
            {"activation_id": a.activation_id, "answer": a.answer, "via": a.via, "at": iso(a.answered_at)}
            for a in answers
        ],
    }


def history(session: Session, limit: int = 30) -> list[dict[str, Any]]:
    return [
        {
            "id": s.id,
            "source": s.source,
            "kind": s.kind,
            "status": s.status,
            "at": iso(s.at),
            "actor": s.actor,
            "added": s.added,
            "changed": s.changed,
            "removed": s.removed,
            "unchanged": s.unchanged,
            "total": s.total,
            "error": s.error,
            "sample": (s.detail or {}).get("sample", {}),
        }
        for s in session.scalars(select(PeopleSnapshot).order_by(PeopleSnapshot.id.desc()).limit(limit))
    ]


def group_names(session: Session) -> list[str]:
    return list(session.scalars(select(PersonGroup.group_name).distinct().order_by(PersonGroup.group_name)))
