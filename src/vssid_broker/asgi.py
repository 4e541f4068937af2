"""ASGI entry point for `uvicorn vssid_broker.asgi:app` (settings from the environment)."""

from vssid_broker.app import create_app
from vssid_broker.config import Settings, SettingsInvalid, load_settings
from vssid_broker.logging_setup import configure

try:
    settings = load_settings(Settings)
except SettingsInvalid as invalid:
    raise SystemExit(str(invalid)) from None
configure(settings.log_level, settings.log_format)
app = create_app(settings)
