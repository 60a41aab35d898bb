"""``prefsvc contacts``: import, show, export, erase."""

from __future__ import annotations

from prefsvc.cli import DomainGroup

group = DomainGroup("contacts", help="People we may mail.")
