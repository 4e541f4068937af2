"""Browser pages: the login page, the callback landing and the account page."""
