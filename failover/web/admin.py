"""Administration: console accounts and API tokens. Admins only; every change is audited."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for

from failover.engine import tokens, users
from failover.errors import InvalidRequest
from failover.web.access import actor, requires_for_blueprint
from failover.web.forms import ConfirmForm, TokenForm, UserAddForm, UserChangeForm
from failover.web.views import read, transact

bp = Blueprint("admin", __name__, url_prefix="/admin")
requires_for_blueprint(bp, "admin")


def _users_page(status: int = 200, add_form: UserAddForm | None = None):  # type: ignore[no-untyped-def]
    return (
        render_template(
            "admin_users.html",
            users=read(users.list_accounts),
            form=add_form or UserAddForm(),
            change=UserChangeForm(),
        ),
        status,
    )


@bp.get("/users")
def user_list():  # type: ignore[no-untyped-def]
    return _users_page()


@bp.post("/users")
def user_add():  # type: ignore[no-untyped-def]
    form = UserAddForm()
    if not form.validate_on_submit():
        return _users_page(400, form)
    try:
        transact(
            users.add,
            username=form.username.data.strip(),
            password=form.password.data,
            role=form.role.data,
            actor=actor(),
        )
    except InvalidRequest as exc:
        form.username.errors = [str(exc)]
        return _users_page(400, form)
    flash(f"User {form.username.data} added.", "info")
    return redirect(url_for("admin.user_list"))


@bp.post("/users/<id:user_id>")
def user_change(user_id: int):  # type: ignore[no-untyped-def]
    form = UserChangeForm()
    if not form.validate_on_submit():
        raise InvalidRequest("; ".join(f"{k}: {', '.join(v)}" for k, v in form.errors.items()) or "incomplete form")
    account = read(users.get, user_id)
    if account is None:
        raise InvalidRequest(f"no user {user_id}")
    name, action = account.username, form.action.data
    if action == "role":
        transact(users.set_role, username=name, role=form.role.data or "", actor=actor())
    elif action in ("disable", "enable"):
        transact(users.set_disabled, username=name, disabled=action == "disable", actor=actor())
    elif action == "reset_totp":
        transact(users.reset_totp, username=name, actor=actor())
    else:
        transact(users.set_password, username=name, password=form.password.data or "", actor=actor())
    flash(f"User {name}: {action.replace('_', ' ')} done.", "info")
    return redirect(url_for("admin.user_list"))


def _token_form(**kwargs: object) -> TokenForm:
    """The token form, offering the enabled users as owners (the admin filling it in first chosen)."""
    form = TokenForm(**kwargs)
    form.owner.choices = [a["username"] for a in read(users.list_accounts) if not a["disabled"]]
    if form.owner.data is None or not form.is_submitted():
        form.owner.data = actor()
    return form


@bp.get("/tokens")
def token_list():  # type: ignore[no-untyped-def]
    return render_template(
        "admin_tokens.html", tokens=read(tokens.list_tokens), form=_token_form(), revoke=ConfirmForm()
    )


@bp.post("/tokens")
def token_create():  # type: ignore[no-untyped-def]
    form = _token_form()
    status, created = 400, None
    if form.validate_on_submit():
        try:
            _, secret = transact(
                tokens.create,
                name=form.name.data.strip(),
                role=form.role.data,
                days=form.days.data,
                actor=actor(),
                owner=form.owner.data,
            )
        except InvalidRequest as exc:
            form.name.errors = [str(exc)]
        else:
            status, created = 201, secret
    page = render_template(
        "admin_tokens.html",
        tokens=read(tokens.list_tokens),
        form=_token_form(formdata=None) if created else form,
        revoke=ConfirmForm(),
        created=created,
    )
    return page, status


@bp.post("/tokens/<id:token_id>/revoke")
def token_revoke(token_id: int):  # type: ignore[no-untyped-def]
    form = ConfirmForm()
    if not form.validate_on_submit():
        raise InvalidRequest("incomplete form")
    transact(tokens.revoke, token_id=token_id, actor=actor())
    flash("Token revoked.", "info")
    return redirect(url_for("admin.token_list"))
