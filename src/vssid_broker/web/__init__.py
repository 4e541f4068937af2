"""Every HTTP face of the broker, grouped by who calls it:

- `pages`: the person's browser (login, VNeID's redirect back, the account page, logout);
- `app_login`: the mobile app's login API (VNeID, password, proof by password);
- `tokens`: token endpoints (refresh, revocation, introspection, JWKS, VNeID's back-channel
  logout);
- `me`: the signed-in person's own data (`/api/v1/me*`);
- `staff/`: the staff's admin API and console, by what staff do.

With `app.py`, the only broker code that imports FastAPI or Starlette.
"""
