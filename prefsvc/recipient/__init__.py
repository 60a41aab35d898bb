"""The recipient side: what a person reaches from a mail.

Links (opening them, one-click unsubscribe, undo), the preference centre, requests from it
(corrections, copy, erasure), sign-in links, acknowledgements.
"""
