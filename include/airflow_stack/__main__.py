"""``make up`` / ``make down``: the whole deployment on this machine, with its UI on 127.0.0.1.

    python -m include.airflow_stack up [--home .stack] [--port 8080] [--workers 1] [--fresh]
    python -m include.airflow_stack status
    python -m include.airflow_stack down
    python -m include.airflow_stack secrets >> .env   # for docker compose

``HUBSPOT_CONNECTION`` (the ``hubspot_default`` connection as an Airflow URI or JSON, in the environment or
``.env``) points the stack at a real portal; without it, the HubSpot sandbox starts too, seeded with 5,000 contacts.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from include.hubspot_sandbox.process import PROJECT_ROOT

from .services import ServiceUnavailable
from .shape import ADMIN_PASSWORD, ADMIN_USER, new_secrets
from .stack import DAG_ID, LocalStack, StackConfig, StackError

DEFAULT_HOME = PROJECT_ROOT / ".stack"


def hubspot_connection(dotenv: Path = PROJECT_ROOT / ".env") -> str:
    """``HUBSPOT_CONNECTION`` from the environment or ``.env``; empty means the sandbox."""
    value = os.environ.get("HUBSPOT_CONNECTION", "")
    if not value and dotenv.exists():
        for line in dotenv.read_text().splitlines():
            key, sep, rest = line.partition("=")
            if sep and key.strip() == "HUBSPOT_CONNECTION":
                value = rest.strip().strip("'\"")
    if value.startswith("{"):
        try:
            json.loads(value)  # fail here, not in a task, if it is broken
        except ValueError as err:
            raise StackError(f"HUBSPOT_CONNECTION is not valid JSON: {err}") from err
    elif value and "://" not in value:
        raise StackError("HUBSPOT_CONNECTION must be a connection URI (http://:TOKEN@api.hubapi.com/https) or JSON")
    return value


def up(args: argparse.Namespace) -> int:
    home: Path = args.home
    if (home / "stack.json").exists() and any(
        LocalStack(home).describe()[n]["running"] for n in LocalStack(home).components
    ):
        print(f"A stack is already running from {home}; `make down` stops it.")
        return status(args)
    config = StackConfig(
        api_port=args.port,
        database_url=args.database_url,
        broker_url=args.broker_url,
        hubspot_connection=hubspot_connection(),
        workers=args.workers,
    )
    if (home / "stack.json").exists():  # the database was made with these keys: keep them
        config.secrets = LocalStack(home).config.secrets
    stack = LocalStack(home, config)
    print(f"Starting Airflow (CeleryExecutor on PostgreSQL and Redis) under {home} ...")
    stack.up(fresh=args.fresh)
    target = (
        "a real HubSpot portal (HUBSPOT_CONNECTION)"
        if config.hubspot_connection
        else (f"the HubSpot sandbox on http://127.0.0.1:{config.sandbox_port} (5,000 seeded contacts)")
    )
    print(
        f"\nAirflow UI:  {config.api_url}/dags/{DAG_ID}   login {ADMIN_USER} / {ADMIN_PASSWORD}\n"
        f"HubSpot:     {target}\nLogs:        {home / 'logs'}\nStop with:   make down"
    )
    return 0


def down(args: argparse.Namespace) -> int:
    if not (args.home / "stack.json").exists():
        print(f"No stack under {args.home}.")
        return 0
    stopped = LocalStack(args.home).down()
    print(f"Stopped: {', '.join(stopped) or 'nothing was running'}.")
    return 0


def status(args: argparse.Namespace) -> int:
    stack = LocalStack(args.home)
    for name, state in stack.describe().items():
        print(
            f"{name:>15}  {'running' if state['running'] else 'stopped':8}  pid {state['pid'] or '-':>7}  "
            f"{state['log']}"
        )
    print(f"\nUI: {stack.config.api_url}   login {ADMIN_USER} / {ADMIN_PASSWORD}")
    return 0


def print_secrets(args: argparse.Namespace) -> int:
    """New shared keys as ``.env`` lines: docker compose refuses to start without them."""
    fresh = new_secrets()
    print(
        f"AIRFLOW__CORE__FERNET_KEY={fresh['fernet_key']}\nAIRFLOW__API_AUTH__JWT_SECRET={fresh['jwt_secret']}\n"
        f"AIRFLOW__API__SECRET_KEY={fresh['secret_key']}"
    )
    return 0


def positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m include.airflow_stack", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("up", "down", "status", "secrets"))
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, help="where the stack keeps its state and logs")
    parser.add_argument("--port", type=int, default=8080, help="the UI and API port on 127.0.0.1")
    parser.add_argument(
        "--database-url", default=StackConfig.database_url, help="metadata database (created if missing)"
    )
    parser.add_argument("--broker-url", default=StackConfig.broker_url, help="Celery broker (Redis)")
    parser.add_argument("--workers", type=positive, default=1, help="Celery workers (each its own process)")
    parser.add_argument(
        "--fresh", action="store_true", help="drop the metadata database and empty the broker's Redis database first"
    )
    args = parser.parse_args(argv)
    args.home = args.home.resolve()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        return {"up": up, "down": down, "status": status, "secrets": print_secrets}[args.command](args)
    except (StackError, ServiceUnavailable) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
