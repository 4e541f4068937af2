"""The staff's HTTP faces, by what staff do.

The admin API under /admin/api/v1 (JSON, a bearer token): `sign_in`, `cases` (the review queue
and decisions), `people` (finding and helping a person, their links), `audit` (the trail and
its export), `unlinking` (admins remove a link), `staff_users` (staff management). Their
problem documents and role routers: `common`.

The staff console under /admin (server-rendered pages, a cookie): `console/`, the same things
through the same services.

No route module imports another; the stories they call are `login.staff` (signing in) and the
admin domain's services (`admin.audited_reads` for every read of a person's data).
"""
