"""The person's requests to the social-insurance agency, each made behind a fresh VNeID sign-in."""
