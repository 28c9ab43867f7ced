"""Command line: ``python -m include.hubspot_sandbox serve [options]``."""

from __future__ import annotations

import argparse
import logging
import sys

from .config import (
    DEFAULT_GRANTS,
    DEFAULT_SERVICE_KEY,
    DEFAULT_TOKEN,
    SERVICE_KEY_PREFIX,
    TIERS,
    RateLimit,
    SandboxConfig,
    TokenGrant,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m include.hubspot_sandbox",
        description="A local HubSpot portal for the permission-pass campaign: lists, marketing email, "
        "email events, subscriptions, exports, forms and account info.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the sandbox HTTP server")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    serve.add_argument("--port", type=int, default=8099, help="port to bind (default: %(default)s)")
    serve.add_argument("--db", default="hubspot_sandbox.db", help="SQLite file; state survives restarts")
    serve.add_argument("--tier", choices=TIERS, default="enterprise", help="Marketing Hub tier")
    serve.add_argument(
        "--token",
        action="append",
        metavar="[service-key:]TOKEN[=SCOPE,...]",
        help=f"accepted bearer token (a private app token, or a Service Key with the {SERVICE_KEY_PREFIX!r} "
        f"prefix), optionally with its scopes; repeatable (default: {DEFAULT_TOKEN} and the Service Key "
        f"{DEFAULT_SERVICE_KEY})",
    )
    serve.add_argument("--rate-limit", help="e.g. 190/10s,1000000/day (default: the tier's limits)")
    serve.add_argument("--seed-contacts", type=int, default=0, help="seed this many contacts if empty")
    serve.add_argument("--seed", type=int, default=0, help="random seed for the seeded portal")
    serve.add_argument("--portal-id", type=int, default=46_801_234)
    serve.add_argument("--list-processing-seconds", type=float, default=2.0)
    serve.add_argument("--export-processing-seconds", type=float, default=2.0)
    serve.add_argument(
        "--list-lag-seconds",
        type=float,
        default=5.0,
        help="a DYNAMIC list shows a change this long after a read found it behind (0: at once)",
    )
    serve.add_argument(
        "--export-url-seconds",
        type=float,
        default=300.0,
        help="an export's download URL expires this long after the status call that gave it",
    )
    serve.add_argument(
        "--export-zip-bytes",
        type=int,
        default=2 * 1024 * 1024,
        help="CSV exports larger than this come zipped (default: HubSpot's 2 MB)",
    )
    serve.add_argument(
        "--export-rows-per-file", type=int, default=1_000_000, help="rows per CSV file inside an export's zip"
    )
    serve.add_argument(
        "--exports-per-day",
        type=int,
        default=30,
        help="exports a portal may start in a rolling 24 hours (default: HubSpot's 30)",
    )
    serve.add_argument(
        "--no-tracking-parameters",
        action="store_true",
        help="CTA clicks report the bare link, without HubSpot's utm_*/_hsenc/_hsmi parameters",
    )
    serve.add_argument(
        "--send-to-unmailable",
        action="store_true",
        help="publishing also sends to non-marketing, double opt-in pending, hard-bounced and "
        "quarantined contacts (HubSpot skips them)",
    )
    serve.add_argument(
        "--inert-unsubscribe-links",
        action="store_true",
        help="a click on the unsubscribe link does not unsubscribe the contact",
    )
    serve.add_argument(
        "--response-window-seconds",
        type=float,
        default=600.0,
        help="opens and clicks arrive over this many seconds after a send",
    )
    serve.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="hold every HubSpot answer this long (the call counts against the limit on arrival)",
    )
    serve.add_argument("--record", help="append every HubSpot request/response to this JSONL file")
    serve.add_argument(
        "--call-log", help="append one line per HubSpot request (time, endpoint, status, User-Agent) to this JSONL file"
    )
    serve.add_argument("--log-level", default="warning")
    return parser


def config_from_args(args: argparse.Namespace) -> SandboxConfig:
    tokens = tuple(TokenGrant.parse(t) for t in args.token) if args.token else DEFAULT_GRANTS
    return SandboxConfig(
        host=args.host,
        port=args.port,
        db_path=args.db,
        tier=args.tier,
        tokens=tokens,
        rate_limit=RateLimit.parse(args.rate_limit) if args.rate_limit else None,
        portal_id=args.portal_id,
        list_processing_seconds=args.list_processing_seconds,
        export_processing_seconds=args.export_processing_seconds,
        list_lag_seconds=args.list_lag_seconds,
        export_url_seconds=args.export_url_seconds,
        export_zip_bytes=args.export_zip_bytes,
        export_rows_per_file=args.export_rows_per_file,
        exports_per_day=args.exports_per_day,
        click_tracking_parameters=not args.no_tracking_parameters,
        skip_unmailable=not args.send_to_unmailable,
        unsubscribe_links=not args.inert_unsubscribe_links,
        response_window_seconds=args.response_window_seconds,
        response_latency_seconds=args.latency_ms / 1000,
        seed_contacts=args.seed_contacts,
        seed=args.seed,
        record_path=args.record,
        call_log_path=args.call_log,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    import uvicorn

    from .app import create_app

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    print(
        f"HubSpot sandbox (portal {config.portal_id}, {config.tier}) on http://{config.host}:{config.port}", flush=True
    )
    uvicorn.run(create_app(config), host=config.host, port=config.port, log_level=args.log_level, access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
