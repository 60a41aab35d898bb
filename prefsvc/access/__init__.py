"""Who may do what: staff accounts, API keys and the audit log."""
