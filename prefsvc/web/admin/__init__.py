"""The admin UI for the marketing and privacy teams: server-rendered pages under ``/admin/``.

One blueprint, ``admin`` (``blueprint``: the role guard, headers, audit), with a module per
area registering its views on it: ``auth`` (sign-in), ``dashboard``, ``campaigns``,
``topics``, ``contacts``, ``imports``, ``suppression``, ``privacy`` (the rights queue) and
``webhooks``.
Views are thin: they read the form, make one domain call, commit and render.
"""

from __future__ import annotations

from flask import Flask

from prefsvc.web.admin import (  # noqa: F401 - each registers its views on the blueprint
    auth,
    campaigns,
    contacts,
    dashboard,
    imports,
    privacy,
    suppression,
    topics,
    webhooks,
)
from prefsvc.web.admin.blueprint import bp


def init_app(app: Flask) -> None:
    """Register the admin pages, every area's views on the one ``admin`` blueprint."""
    app.register_blueprint(bp)
