"""Campaigns from draft to delivered.

Compose, launch, the audience rule, delivery of batches, preview and test send.
"""
