"""Mail that comes back: bounces, complaints, auto-replies and ``mailto:`` unsubscribes.

The pure core lives here and needs no database: ``verp`` makes and reads the signed envelope
addresses (``bounces+TOKEN@``, ``unsubscribe+TOKEN@``) that name a delivery without exposing it,
``classify`` turns any raw message into a ``Report`` (never raising), with ``codes`` mapping
RFC 3463 status codes and diagnostics to what they mean for the person, and ``reports`` reading
the machine-readable parts (RFC 3464 delivery status, RFC 5965 feedback reports, returned
headers). The intake (LMTP, pipe, IMAP) and the policy that acts on a report sit on top.
"""
