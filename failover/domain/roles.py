"""Console and API roles, each including the ones below it."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


ROLES = tuple(Role)  # lowest first
ROLE_RANK = {role.value: rank for rank, role in enumerate(ROLES, start=1)}
