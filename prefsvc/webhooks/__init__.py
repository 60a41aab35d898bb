"""Signed event webhooks and the changes feed: how other systems learn what people chose.

``outbox`` holds events in the transaction of the change, ``events`` names them and builds
their payloads, ``signing`` is the Standard Webhooks signature, ``endpoints`` what admins
register, ``delivery`` fans events out and posts them, ``feed`` the pull alternative.
"""
