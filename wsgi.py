"""WSGI entry point: ``gunicorn wsgi:app``. A bad setting stops start-up with one line."""

from __future__ import annotations

import sys

from prefsvc import create_app
from prefsvc.settings import SettingsError

try:
    app = create_app()
except SettingsError as exc:
    print(f"Error: {exc}", file=sys.stderr)
    sys.exit(2)
