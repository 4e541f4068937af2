"""The suite's HTTP clients: httpx's, sharing one TLS context.

Every httpx client builds its own `ssl.SSLContext` unless given one, loading the certifi CA
bundle each time (about 20 ms of CPU); the suite makes a client in nearly every test and
several in some, over plain HTTP on loopback. One context, made once, serves them all; the
clients are httpx's own in every other respect.
"""

from __future__ import annotations

from typing import Any

import httpx

TLS = httpx.create_ssl_context()
"""The verification httpx sets up by default (certifi's CAs), made once for the run."""


class AsyncClient(httpx.AsyncClient):
    def __init__(self, **options: Any) -> None:
        options.setdefault("verify", TLS)
        super().__init__(**options)


class Client(httpx.Client):
    def __init__(self, **options: Any) -> None:
        options.setdefault("verify", TLS)
        super().__init__(**options)
