"""Flask-WTF forms: every console form carries a CSRF token."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional


class ActivateForm(FlaskForm):
    runbook = SelectField("Runbook", validators=[DataRequired()])
    reason = StringField("Reason", validators=[DataRequired(message="say why you are activating"), Length(max=500)])
    services = StringField("Affected services (comma-separated)", validators=[Optional(), Length(max=500)])
    override = TextAreaField(
        "Message override (optional, replaces SMS and email text)", validators=[Optional(), Length(max=1600)]
    )
    drill = BooleanField("Drill (prefix [DRILL], drill group only, status page untouched)")
    confirm = HiddenField()


class ConfirmForm(FlaskForm):
    """An empty form: a button that only carries the CSRF token."""
