"""The append-only audit trail of logins, links and token events."""
