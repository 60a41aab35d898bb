"""Recipient pages (placeholder until the recipient module lands)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("recipient", __name__)
