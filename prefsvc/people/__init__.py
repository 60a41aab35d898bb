"""People and what they subscribe to.

Contacts, topics and the CSV import.
"""
