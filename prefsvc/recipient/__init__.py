"""The recipient side: what a person reaches from a mail.

Links, one-click unsubscribe, the preference centre, sign-in links, acknowledgements.
"""
