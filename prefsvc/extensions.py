"""Flask extensions, created unbound here and bound to the app in ``create_app``."""

from __future__ import annotations

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

from prefsvc.models import Base

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
babel = Babel()
csrf = CSRFProtect()


class RouteLimiter(Limiter):
    """Flask-Limiter for limits declared on routes only, as prefsvc declares them.

    A route's decorator checks that route's limits. The check Flask-Limiter also runs before
    every request looks for default, application and blueprint limits, of which there are
    none: it is skipped, because it cost the busiest route (the one-click POST, exempt) as
    much as rendering its page.
    """

    def _check_request_limit(
        self, callable_name: str | None = None, in_middleware: bool = True
    ) -> None:
        if not in_middleware:
            super()._check_request_limit(callable_name, in_middleware)


# Limits are declared on the routes (prefsvc.web.recipient); storage is chosen per app.
limiter = RouteLimiter(key_func=get_remote_address)
login_manager = LoginManager()  # staff sessions of the admin UI (prefsvc.web.admin)
