"""VssID sessions: signing keys, access and refresh tokens, browser sessions."""
