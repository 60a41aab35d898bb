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
# Limits are declared on the routes (prefsvc.web.recipient); storage is chosen per app.
limiter = Limiter(key_func=get_remote_address)
login_manager = LoginManager()  # staff sessions of the admin UI (prefsvc.web.admin)
