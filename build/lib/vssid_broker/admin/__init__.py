"""Staff users and the link review endpoints (built in its own issue)."""
