"""Activation by phone, for when no laptop works: RUN by SMS, confirmed with the operator's TOTP code.

An operator registers a phone and a PIN on their account (``failover user
phone``; TOTP must be enabled). Texting ``RUN <runbook> <PIN>`` from that
phone answers the preview summary as one SMS and waits five minutes for the
current authenticator code; the code activates the runbook in the
operator's name. Approval runbooks wait for a second operator, who texts
``APPROVE <activation> <PIN>`` and their own code (four eyes: the requester
cannot approve). Every step is audited with the operator's name.

Refusals: a number that is no operator's phone gets the generic help text
(the reply path answers it); wrong PINs and codes count together, slow down
after three and lock the phone path after five (an admin unlocks it by
registering the phone again); a code outside the current time step (stale)
or already used (a replay: the account's ``totp_last_step``) is refused.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from failover.domain import phone_commands
from failover.domain.contacts import normalise_phone
from failover.domain.phone_commands import Approve, Code, Command, Run
from failover.domain.preview import Preview, Prices
from failover.domain.runbooks import Catalog
from failover.engine import activation, audit, optouts, trigger, users
from failover.errors import FailoverError, InvalidRequest, NotFound
from failover.models import ActivationState, OperatorPhone, PhoneRequest, User
from failover.privacy import mask_phone
from failover.secretbox import SecretBox, SecretUnreadable

OPERATOR_ROLES = ("operator", "admin")
LOCKED_TEXT = "Activation by phone is locked for this account. Sign in to the console, or ask an admin to unlock it."
SLOW_TEXT = "Too many wrong attempts: wait {seconds}s before trying again."
USAGE_TEXT = "To activate: RUN <runbook> <PIN>. To approve: APPROVE <activation number> <PIN>."
_hasher = PasswordHasher()


@dataclass
class Answered:
    action: str
    text: str
    batch_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Tools:
    """What the phone path needs from the Runtime: the TOTP box and how previews are priced."""

    box: SecretBox
    prices: Prices
    transports: Mapping[str, str] | None = None


# -- registration (CLI) -----------------------------------------------------------------


def register(session: Session, *, username: str, phone: str, pin: str, actor: str) -> None:
    """Register (or replace, which also unlocks) ``username``'s phone and PIN for activation by SMS."""
    user = session.scalars(select(User).where(User.username == username)).one_or_none()
    if user is None:
        raise NotFound(f"no user '{username}'")
    if user.role not in OPERATOR_ROLES:
        raise InvalidRequest(f"{username} is a {user.role}: only operators and admins can activate by phone")
    if not user.totp_secret:
        raise InvalidRequest(f"{username} has no authenticator (TOTP) enrolled: enrol one in the console first")
    if not phone_commands.PIN.match(pin or ""):
        raise InvalidRequest("the PIN must be 4 to 12 digits")
    try:
        number = normalise_phone(phone)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    taken = session.scalars(select(OperatorPhone).where(OperatorPhone.phone == number)).one_or_none()
    if taken is not None and taken.user_id != user.id:
        raise InvalidRequest(f"{mask_phone(number)} is already registered to another account")
    row = session.get(OperatorPhone, user.id)
    if row is None:
        row = OperatorPhone(user_id=user.id, phone=number, pin_hash="", failures=0)
        session.add(row)
    row.phone, row.pin_hash, row.failures, row.locked_at, row.failed_at = number, _hasher.hash(pin), 0, None, None
    audit.record(
        session,
        action="phone.registered",
        actor=actor,
        target_type="user",
        target_id=username,
        details={"phone": mask_phone(number)},
    )


def unregister(session: Session, *, username: str, actor: str) -> bool:
    user = session.scalars(select(User).where(User.username == username)).one_or_none()
    row = session.get(OperatorPhone, user.id) if user is not None else None
    if row is None:
        return False
    session.delete(row)
    audit.record(session, action="phone.unregistered", actor=actor, target_type="user", target_id=username, details={})
    return True


# -- the inbound side -------------------------------------------------------------------


def handle(
    session: Session,
    catalog: Catalog,
    tools: Tools,
    *,
    sender: str,
    command: Command,
    now: dt.datetime,
) -> Answered | None:
    """One operator command from ``sender``; None when the sender is no operator (they get the help text)."""
    phone = session.scalars(select(OperatorPhone).where(OperatorPhone.phone == sender).with_for_update()).first()
    user = session.get(User, phone.user_id) if phone is not None else None
    if phone is None or user is None or user.disabled or user.role not in OPERATOR_ROLES or not user.totp_secret:
        if not isinstance(command, Code):  # a bare number is most likely an ordinary reply
            details = {"sender": mask_phone(sender), "command": type(command).__name__.lower()}
            audit.record(session, action="phone.not_operator", actor="sms", details=details)
        return None
    name = user.username
    if phone.locked_at is not None:
        _audit(session, "phone.refused_locked", name, {})
        return Answered("phone_locked", LOCKED_TEXT)
    pending = _pending(session, user.id, now)
    if isinstance(command, Code) and pending is None:
        return None  # no request waits for a code: an ordinary reply
    wait = phone_commands.wait_before_next(phone.failures, phone.failed_at, now)
    if wait is not None:
        _audit(session, "phone.refused_slow_down", name, {"failures": phone.failures})
        return Answered("phone_slow_down", SLOW_TEXT.format(seconds=math.ceil(wait.total_seconds())))
    if isinstance(command, Code):
        assert pending is not None
        return _confirm(session, catalog, tools, phone, user, pending, command, now)
    if (isinstance(command, Run) and not command.runbook_id) or (
        isinstance(command, Approve) and not command.activation_id
    ):
        return Answered("phone_usage", USAGE_TEXT)  # "run out of battery": not an attempt, nothing counted
    if not _pin_ok(phone, command.pin):
        return _failure(session, phone, name, "phone.pin_wrong", "Wrong PIN.", now)
    phone.failures = 0
    if isinstance(command, Run):
        return _run(session, catalog, tools, user, command, now)
    return _approve(session, catalog, tools, user, command, now)


def _run(session: Session, catalog: Catalog, tools: Tools, user: User, command: Run, now: dt.datetime) -> Answered:
    runbook = catalog.runbook(command.runbook_id)
    if runbook is None:
        _audit(session, "phone.unknown_runbook", user.username, {"runbook": command.runbook_id[:64]})
        known = ", ".join(sorted(catalog.runbooks)[:5])
        return Answered("phone_unknown_runbook", f"No runbook '{command.runbook_id}'. Runbooks: {known}.")
    preview = trigger.preview(
        catalog,
        runbook_ids=[runbook.id],
        reason=_reason(user.username),
        actor=user.username,
        prices=tools.prices,
        opted_out=optouts.opted_out_people(session, catalog.contacts),
        transports=tools.transports,
    )
    _open_request(session, user.id, now, kind="run", runbook_id=runbook.id)
    _audit(session, "phone.run_requested", user.username, {"runbook": runbook.id, "counts": dict(preview.counts)})
    return Answered("phone_preview", phone_commands.preview_sms(preview, what=f"RUN {runbook.id}"))


def _approve(
    session: Session, catalog: Catalog, tools: Tools, user: User, command: Approve, now: dt.datetime
) -> Answered:
    try:
        preview: Preview = trigger.preview_approval(
            session,
            catalog,
            activation_id=command.activation_id,
            prices=tools.prices,
            opted_out=optouts.opted_out_people(session, catalog.contacts),
            transports=tools.transports,
        )
    except FailoverError as exc:
        _audit(session, "phone.approve_refused", user.username, {"activation": command.activation_id})
        return Answered("phone_refused", f"Cannot approve: {exc}"[:300])
    _open_request(session, user.id, now, kind="approve", activation_id=command.activation_id)
    _audit(session, "phone.approve_requested", user.username, {"activation": command.activation_id})
    return Answered("phone_preview", phone_commands.preview_sms(preview, what=f"APPROVE #{command.activation_id}"))


def _confirm(
    session: Session,
    catalog: Catalog,
    tools: Tools,
    phone: OperatorPhone,
    user: User,
    request: PhoneRequest,
    command: Code,
    now: dt.datetime,
) -> Answered:
    try:
        secret = tools.box.open(str(user.totp_secret))
    except SecretUnreadable:
        _audit(session, "phone.refused_secret_unreadable", user.username, {})
        return Answered("phone_refused", "Your authenticator cannot be checked here; use the console.")
    # The console's own check: the current step or one either side, and never a step already used.
    step = users._matching_step(secret, command.code, after=user.totp_last_step)
    if step is None:
        used = users._matching_step(secret, command.code, after=None) is not None
        action = "phone.code_replayed" if used else "phone.code_wrong"
        text = "That code was already used: wait for the next one." if used else "Wrong or expired code."
        return _failure(session, phone, user.username, action, text, now)
    user.totp_last_step = step
    phone.failures = 0
    request.state = "done"
    try:
        if request.kind == "run":
            accepted = activation.activate(
                session,
                catalog,
                runbook_id=str(request.runbook_id),
                reason=_reason(user.username),
                actor=user.username,
                source="phone",
            )
        else:
            accepted = activation.approve(
                session, catalog, activation_id=int(request.activation_id or 0), actor=user.username
            )
    except FailoverError as exc:
        _audit(session, "phone.confirm_refused", user.username, {"request": request.id, "error": str(exc)[:200]})
        return Answered("phone_refused", f"Refused: {exc}"[:300])
    _audit(
        session,
        "phone.confirmed",
        user.username,
        {"request": request.id, "kind": request.kind, "activation": accepted.activation_id},
    )
    if accepted.state == ActivationState.PENDING_APPROVAL:
        text = (
            f"Activation #{accepted.activation_id} waits for a second operator: "
            f"they text APPROVE {accepted.activation_id} <their PIN>, or approve in the console."
        )
        return Answered("phone_pending_approval", text, list(accepted.batch_ids))
    sent = ", ".join(f"{n} {c}" for c, n in sorted(accepted.counts.items()) if n) or "nothing"
    return Answered("phone_activated", f"Sending #{accepted.activation_id}: {sent}.", list(accepted.batch_ids))


# -- helpers ----------------------------------------------------------------------------


def _pin_ok(phone: OperatorPhone, pin: str) -> bool:
    if not phone_commands.PIN.match(pin or ""):
        return False
    try:
        return _hasher.verify(phone.pin_hash, pin)
    except (VerificationError, InvalidHashError):
        return False


def _failure(session: Session, phone: OperatorPhone, name: str, action: str, text: str, now: dt.datetime) -> Answered:
    phone.failures += 1
    _audit(session, action, name, {"failures": phone.failures})
    phone.failed_at = now
    if phone.failures >= phone_commands.MAX_FAILURES:
        phone.locked_at = now
        session.execute(
            update(PhoneRequest)
            .where(PhoneRequest.user_id == phone.user_id, PhoneRequest.state == "pending")
            .values(state="refused")
        )
        _audit(session, "phone.locked", name, {"failures": phone.failures})
        return Answered("phone_locked", LOCKED_TEXT)
    return Answered("phone_refused", f"{text} {phone_commands.MAX_FAILURES - phone.failures} attempt(s) left.")


def _pending(session: Session, user_id: int, now: dt.datetime) -> PhoneRequest | None:
    rows = session.scalars(
        select(PhoneRequest)
        .where(PhoneRequest.user_id == user_id, PhoneRequest.state == "pending")
        .order_by(PhoneRequest.id.desc())
        .with_for_update()
    ).all()
    for row in rows:
        if row.expires_at <= now:
            row.state = "expired"
    return next((row for row in rows if row.state == "pending"), None)


def _open_request(
    session: Session,
    user_id: int,
    now: dt.datetime,
    *,
    kind: str,
    runbook_id: str | None = None,
    activation_id: int | None = None,
) -> None:
    """One request waits per operator: a new RUN or APPROVE replaces the one before."""
    session.execute(
        update(PhoneRequest)
        .where(PhoneRequest.user_id == user_id, PhoneRequest.state == "pending")
        .values(state="replaced")
    )
    session.add(
        PhoneRequest(
            user_id=user_id,
            kind=kind,
            runbook_id=runbook_id,
            activation_id=activation_id,
            state="pending",
            created_at=now,
            expires_at=now + phone_commands.REQUEST_TTL,
        )
    )
    session.flush()


def _reason(username: str) -> str:
    return f"activated by SMS from {username}'s registered phone (PIN + authenticator code)"


def _audit(session: Session, action: str, username: str, details: dict[str, object]) -> None:
    audit.record(session, action=action, actor=username, target_type="user", target_id=username, details=details)
