"""Mail as bytes and on the wire.

Rendering, message building and DKIM, SMTP/Maildir transport, signed tokens, rate limits,
service notices.
"""
