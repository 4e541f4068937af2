"""vssid-broker: sign in to VssID with a level-2 VNeID account."""

__version__ = "0.1.0"
