"""ASGI entry point for `uvicorn vssid_broker.asgi:app` (settings from the environment)."""

import gc

from vssid_broker.app import create_app
from vssid_broker.config import Settings, SettingsInvalid, load_settings
from vssid_broker.logging_setup import configure

try:
    settings = load_settings(Settings)
except SettingsInvalid as invalid:
    raise SystemExit(str(invalid)) from None
configure(settings.log_level, settings.log_format)
app = create_app(settings)

# A serving process: what start-up built (modules, the app, SQLAlchemy's and pydantic's
# structures) lives as long as the process, so the cyclic collector need not walk it again at
# every full collection; and one request allocates thousands of objects, so young collections
# at the default 700 ran several times per request. Together about a tenth of the CPU of a
# refresh or a login went to the collector (docs/performance.md).
gc.collect()
gc.freeze()
gc.set_threshold(10_000, 20, 20)
