"""Consent and its proof.

Subscribe, unsubscribe, object, pause and renew (with their PL/pgSQL twins), the
hash-chained ledger, the marketing window, suppression and re-permission.
"""
