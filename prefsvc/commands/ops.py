"""Operational commands: demo, worker."""

from __future__ import annotations

commands: list = []
