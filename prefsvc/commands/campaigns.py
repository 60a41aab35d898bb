"""``prefsvc campaigns``: create, send, show."""

from __future__ import annotations

from prefsvc.cli import DomainGroup

group = DomainGroup("campaigns", help="Mailings to a topic's subscribers.")
