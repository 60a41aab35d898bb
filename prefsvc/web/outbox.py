"""Read-only view of the Maildir outbox (placeholder)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("outbox", __name__)
