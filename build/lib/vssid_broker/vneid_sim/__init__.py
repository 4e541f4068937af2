"""Simulated VNeID: a standalone OpenID provider with test citizens.

It is its own ASGI app and imports nothing from the rest of ``vssid_broker``: the broker
talks to it only over HTTP, exactly as it would to the real VNeID.
"""
