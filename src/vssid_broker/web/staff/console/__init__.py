"""The staff console at /admin: server-rendered pages over the same services as the admin API,
one module per thing staff do (`sign_in`, `cases`, `people`, `audit`, `staff`), what they share
in `base`."""
