"""Alembic's migrations of the broker's schema, installed as `vssid_broker.migrations`."""
