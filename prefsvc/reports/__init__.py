"""Figures: the admin dashboard and the Prometheus metrics."""
