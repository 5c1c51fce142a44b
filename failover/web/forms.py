"""Flask-WTF forms: every console form carries a CSRF token, every text field refuses control characters."""

from __future__ import annotations

import re
from typing import Any

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from failover.domain.roles import ROLES
from failover.engine.notices import SEVERITIES
from failover.models import MAX_ID

# NUL and other C0 controls (tab and newlines are fine): PostgreSQL refuses NUL in text outright.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def form_problems(form: FlaskForm) -> str:
    """Every field error as one line that names the field: "Reason: Field cannot be longer than 500 characters."."""
    return "; ".join(f"{form[name].label.text}: {' '.join(errors)}" for name, errors in form.errors.items())


def plain_text(_form: Any, field: Any) -> None:
    values = field.data if isinstance(field.data, list) else [field.data]
    if any(isinstance(v, str) and _CONTROL.search(v) for v in values):
        raise ValidationError("contains control characters")


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=64), plain_text])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


class TotpForm(FlaskForm):
    code = StringField("Six-digit code", validators=[DataRequired(), Length(max=12), plain_text])


class ActivateForm(FlaskForm):
    runbook = MultiCheckboxField("Runbooks", validators=[DataRequired(message="choose at least one runbook")])
    services = MultiCheckboxField("Affected services", validators=[Optional()])
    other_services = StringField(
        "Other affected services (comma-separated)", validators=[Optional(), Length(max=500), plain_text]
    )
    reason = StringField(
        "Internal note (audit log only, never sent)",
        validators=[DataRequired(message="say why you are activating"), Length(max=500), plain_text],
    )
    message = TextAreaField(
        "Message to recipients (optional, shown in the emails as a note from IT)",
        validators=[Optional(), Length(max=500), plain_text],
    )
    override = TextAreaField(
        "Replace the whole text (optional: every SMS and email says only this)",
        validators=[Optional(), Length(max=1600), plain_text],
    )
    drill = BooleanField("Drill (prefix [DRILL], drill group only, status page untouched)")
    confirm = HiddenField()
    fingerprint = HiddenField(validators=[Optional(), Length(max=64), plain_text])

    def chosen_services(self) -> list[str]:
        extra = [s.strip() for s in (self.other_services.data or "").split(",") if s.strip()]
        return list(dict.fromkeys([*(self.services.data or []), *extra]))


class AddRunbookForm(FlaskForm):
    """Add runbooks to an open incident: the trigger form without a new incident."""

    runbook = MultiCheckboxField("Runbooks to add", validators=[DataRequired(message="choose at least one runbook")])
    reason = StringField(
        "Reason", validators=[DataRequired(message="say why you are adding it"), Length(max=500), plain_text]
    )
    override = TextAreaField(
        "Message override (optional, replaces SMS and email text)",
        validators=[Optional(), Length(max=1600), plain_text],
    )
    confirm = HiddenField()
    fingerprint = HiddenField(validators=[Optional(), Length(max=64), plain_text])


class UpdateForm(FlaskForm):
    """An update to the people an open incident told (engine.updates)."""

    audience = SelectField("Send to", choices=["all", "silent"], default="all")
    channels = MultiCheckboxField(
        "Channels", choices=["sms", "email"], default=["sms", "email"], validators=[DataRequired("choose a channel")]
    )
    subject = StringField("Email subject", validators=[DataRequired(), Length(max=300), plain_text])
    text = TextAreaField("Text", validators=[DataRequired(), Length(max=1600), plain_text])
    eta = StringField("ETA ({{ eta }})", validators=[Optional(), Length(max=100), plain_text])
    status_url = StringField("Status page URL ({{ status_url }})", validators=[Optional(), Length(max=300), plain_text])
    key = HiddenField(validators=[DataRequired("reload the form"), Length(max=64), plain_text])
    confirm = HiddenField()
    fingerprint = HiddenField(validators=[Optional(), Length(max=64), plain_text])


class ConfirmForm(FlaskForm):
    """An empty form: a button that only carries the CSRF token."""


class AckOnBehalfForm(FlaskForm):
    person = StringField("Person id", validators=[DataRequired(message="name the person"), Length(max=64), plain_text])
    note = StringField("How they answered (audit log)", validators=[Optional(), Length(max=200), plain_text])


class EscalationForm(FlaskForm):
    action = SelectField("Escalation", choices=["pause", "resume", "cancel"])


class ApproveForm(FlaskForm):
    """Approve what the approver was shown: the preview's fingerprint comes back with the button."""

    fingerprint = HiddenField(validators=[DataRequired(), Length(max=64), plain_text])


class ConfirmOutageForm(FlaskForm):
    """Confirm an outage by hand: first a preview of what it sends, then the confirm with its fingerprint."""

    service = HiddenField(validators=[DataRequired(message="name the service"), Length(max=100), plain_text])
    reason = StringField(
        "Why you know it is down (internal note, never sent)",
        validators=[
            DataRequired(message="a reason is required: say why you are confirming the outage"),
            Length(max=500),
            plain_text,
        ],
    )
    confirm = HiddenField()
    fingerprint = HiddenField(validators=[Optional(), Length(max=64), plain_text])


class StandDownForm(FlaskForm):
    note = StringField("Note for the audit log (optional)", validators=[Optional(), Length(max=500), plain_text])
    skip_all_clear = BooleanField("Skip the all-clear: resolve and close the notices, message nobody")
    override = TextAreaField(
        "All-clear text (optional: replaces the SMS and email texts; the status page keeps its own)",
        validators=[Optional(), Length(max=1600), plain_text],
    )
    confirm = HiddenField()
    fingerprint = HiddenField(validators=[Optional(), Length(max=64), plain_text])

    @property
    def send_all_clear(self) -> bool:
        return not self.skip_all_clear.data


class NoticeForm(FlaskForm):
    title = StringField("Title", validators=[DataRequired(), Length(max=300), plain_text])
    body = TextAreaField("Text (Markdown)", validators=[DataRequired(), Length(max=10_000), plain_text])
    severity = SelectField("Severity", choices=list(SEVERITIES), default="major")
    incident_id = IntegerField("Incident number (optional)", validators=[Optional(), NumberRange(min=1, max=MAX_ID)])


class PasswordChangeForm(FlaskForm):
    current = PasswordField("Current password", validators=[DataRequired(), Length(max=1024)])
    new = PasswordField("New password (12 characters or more)", validators=[DataRequired(), Length(max=1024)])
    repeat = PasswordField("New password again", validators=[DataRequired(), Length(max=1024)])

    def validate_repeat(self, field: Any) -> None:
        if field.data != self.new.data:
            raise ValidationError("the two new passwords differ")


class TotpEnrolForm(FlaskForm):
    code = StringField("Code shown by your authenticator", validators=[DataRequired(), Length(max=12), plain_text])


class TotpDisableForm(FlaskForm):
    password = PasswordField("Your password", validators=[DataRequired(), Length(max=1024)])


class UserAddForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=64), plain_text])
    role = SelectField("Role", choices=[role.value for role in ROLES], default="operator")
    password = PasswordField("Initial password (12 characters or more)", validators=[DataRequired(), Length(max=1024)])


class UserChangeForm(FlaskForm):
    action = SelectField(
        "Change",
        choices=["role", "disable", "enable", "reset_totp", "password"],
    )
    role = SelectField("Role", choices=[role.value for role in ROLES], validators=[Optional()])
    password = PasswordField("New password", validators=[Optional(), Length(max=1024)])


class TokenForm(FlaskForm):
    name = StringField("Name (who or what uses it)", validators=[DataRequired(), Length(max=64), plain_text])
    owner = SelectField("Acts for (its role is never more than theirs)", choices=[])  # the enabled users, by view
    role = SelectField("Role", choices=[role.value for role in ROLES], default="viewer")
    days = IntegerField("Expires after (days)", default=90, validators=[InputRequired(), NumberRange(min=1, max=366)])


class AuditFilterForm(FlaskForm):
    """Read by GET: no CSRF token, nothing changes."""

    class Meta:
        csrf = False

    since = DateTimeLocalField("From (UTC)", format="%Y-%m-%dT%H:%M", validators=[Optional()])
    until = DateTimeLocalField("Until (UTC)", format="%Y-%m-%dT%H:%M", validators=[Optional()])
    actor = StringField("Actor", validators=[Optional(), Length(max=64), plain_text])
    action = StringField("Action (auth.* for a prefix)", validators=[Optional(), Length(max=64), plain_text])
    incident = IntegerField("Incident", validators=[Optional(), NumberRange(min=1, max=MAX_ID)])
    before = IntegerField(validators=[Optional(), NumberRange(min=1, max=MAX_ID)])
