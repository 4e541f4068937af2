"""ASGI entry point for `uvicorn vssid_broker.asgi:app` (settings from the environment)."""

from vssid_broker.app import create_app
from vssid_broker.config import Settings
from vssid_broker.logging_setup import configure

settings = Settings()
configure(settings.log_level, settings.log_format)
app = create_app(settings)
