"""Data-subject rights and retention.

The request register, the access export, rectification, erasure and anonymisation.
"""
