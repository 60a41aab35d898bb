"""Bearer-key authentication and role checks for every API route.

Each view declares the permission it needs with ``@requires(bp, "contacts:read")``; a
``before_request`` hook checks key and role before the body is even parsed, so a caller
without the right gets 401 or 403, never a validation error. A view without a declared
permission is refused (deny by default), except those marked ``@public``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from flask import current_app, g, request
from flask_smorest import Blueprint

from prefsvc import clock
from prefsvc.access import apikeys, audit
from prefsvc.extensions import db
from prefsvc.models import ApiKey
from prefsvc.web.api.problems import problem

PERMISSION = "_prefsvc_permission"
PUBLIC = "public"


def requires(bp: Blueprint, permission: str) -> Callable:
    """Mark a view as needing ``permission`` and document its roles, 401 and 403."""
    if permission not in apikeys.PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    def mark(view: Callable) -> Callable:
        setattr(view, PERMISSION, permission)
        roles = ", ".join(apikeys.roles_for(permission))
        view.__doc__ = f"{inspect.cleandoc(view.__doc__ or '')}\n\nRoles: {roles}."
        view = bp.alt_response(401, response="UNAUTHORIZED")(view)
        return bp.alt_response(403, response="FORBIDDEN")(view)

    return mark


def public(view: Callable) -> Callable:
    setattr(view, PERMISSION, PUBLIC)
    return view


def _unauthorized(detail: str, error: str | None = None) -> Any:
    challenge = 'Bearer realm="prefsvc"' + (f', error="{error}"' if error else "")
    return problem(401, detail, headers={"WWW-Authenticate": challenge})


def check_access() -> Any:
    """Authenticate the bearer key and check its role for the route being called."""
    view = current_app.view_functions.get(request.endpoint or "")
    permission = getattr(view, PERMISSION, None)
    if permission == PUBLIC or request.method == "OPTIONS":
        return None
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        return _unauthorized("send an API key as 'Authorization: Bearer <key>'")
    key = apikeys.authenticate(db.session, presented.strip(), now=clock.now())
    if key is None:
        db.session.rollback()
        return _unauthorized("this API key is unknown or revoked", "invalid_token")
    g.api_key = key
    db.session.commit()  # keep last_used_at, whatever the view then does
    if permission is None or not apikeys.allows(key.role, permission):
        return problem(403, f"a {key.role.value} key may not do this")
    return None


def current_key() -> ApiKey:
    return g.api_key


def actor() -> str:
    """Name the caller in the audit log and the ledger: the key's id, never its secret."""
    return f"apikey:{current_key().id}"


def record(action: str, target: str | None = None, **detail: Any) -> None:
    """Write the audit entry of the change this request makes (same transaction)."""
    audit.record(
        db.session,
        actor=actor(),
        action=action,
        target=target,
        detail=detail,
        now=clock.now(),
    )
