"""Background work on Dramatiq.

Broker set-up and actors, the outbox relay, the scheduler and the worker supervisor.
"""
