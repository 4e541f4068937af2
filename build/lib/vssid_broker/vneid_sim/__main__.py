"""`python -m vssid_broker.vneid_sim [--host H] [--port P] [--test-mode]`"""

from __future__ import annotations

import argparse

from .config import SimSettings
from .server import run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the simulated VNeID OpenID provider.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--issuer", help="issuer URL (default http://HOST:PORT)")
    parser.add_argument("--test-mode", action="store_true", help="enable the /_test API")
    args = parser.parse_args(argv)
    settings = SimSettings()  # environment (VNEID_SIM_*) first, then the flags
    default_issuer = SimSettings.model_fields["issuer"].default
    if args.issuer:
        settings = settings.model_copy(update={"issuer": args.issuer.rstrip("/")})
    elif settings.issuer == default_issuer:
        settings = settings.model_copy(update={"issuer": f"http://{args.host}:{args.port}"})
    if args.test_mode:
        settings = settings.model_copy(update={"test_mode": True})
    run(args.host, args.port, settings)


if __name__ == "__main__":
    main()
