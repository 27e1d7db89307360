"""The ``hotline`` command: serve, worker, migrate, seed-demo, users, nlp, calendar, wechat simulate.

Exit codes: 0 success, 2 bad input (one line on stderr saying what to fix), 1 anything else.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

import hotline.multiproc_dir  # noqa: F401  (before any import that makes a metric)
from channels import simulate as channel_simulators
from channels.phone import simulate as phone_commands
from hotline import logs, nlp_commands, routing_commands
from hotline.settings import load_settings
from nlp import cli as nlp_cli
from wechat_bot import simulator as wechat_simulator

#: how long ``hotline serve``'s supervisor waits for a worker's answer before it replaces the worker as hung
WORKER_HEALTHCHECK_SECONDS = 60


def cmd_serve(args: argparse.Namespace) -> int:
    if args.workers < 1:
        print("hotline: --workers must be at least 1", file=sys.stderr)
        return 2
    made_dir: str | None = None
    if args.workers > 1:
        # every worker writes its figures where any worker's /metrics adds them up (hotline.metrics); the
        # directory must be there and empty before prometheus_client is first imported, here or in a worker
        if not os.environ.get(MULTIPROC_ENV):
            made_dir = os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="hotline-metrics-")
        directory = Path(os.environ[MULTIPROC_ENV])
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):  # figures of an earlier run must not be added to this one's
            stale.unlink()

    import uvicorn

    from agent_ui.hub import FRAME_MAX_BYTES

    settings = load_settings()
    try:
        uvicorn.run(
            "hotline.app:create_served_app",
            factory=True,
            host=args.host or settings.host,
            port=args.port or settings.port,
            workers=args.workers,
            log_config=logs.logging_config(),
            access_log=False,  # hotline.logs.RequestId writes the access line, with the request id
            proxy_headers=True,
            ws_max_size=FRAME_MAX_BYTES,
            # uvicorn kills a worker that has not answered its supervisor's ping within this many seconds, and a
            # spawned worker answers only once it has imported the application (jieba, scikit-learn, every route:
            # 9-10 s on a busy 2-core machine). With uvicorn's default of 5 s a worker started under load was killed
            # and restarted every 5.5 s for as long as the load lasted (seen in bench/intake_load.py: one of two
            # workers never served, its imports took a core).
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
        )
    finally:
        if made_dir:
            shutil.rmtree(made_dir, ignore_errors=True)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from hotline import metrics
    from hotline.services import Services, TicketFollower, build_long_lived_services
    from hotline.settings import Settings
    from hotline.worker import run_forever

    settings = load_settings()
    if settings.worker_metrics_port:
        from hotline.db import make_engine, make_sessionmaker

        sessions = make_sessionmaker(make_engine(settings.database_url))
        metrics.serve_worker_metrics(settings.worker_metrics_host, settings.worker_metrics_port, sessions)
    def build(settings: Settings) -> Services:
        services = build_long_lived_services(settings)
        if not args.once:  # a pass that ends at once has nothing to follow
            TicketFollower(services).start()
        return services

    run_forever(settings, once=args.once, build=build)
    return 0


def cmd_migrate(_args: argparse.Namespace) -> int:
    from hotline.migrate import upgrade

    upgrade(load_settings().database_url)
    print("database is at the latest schema")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from hotline.backup import BackupError, backup

    try:
        written = backup(load_settings().database_url, Path(args.out))
    except BackupError as exc:
        print(f"hotline: {exc}", file=sys.stderr)
        return 2
    print(f"backup written to {written} ({written.stat().st_size} bytes)")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from hotline.backup import BackupError, restore

    if not args.yes:
        print("hotline: restore replaces everything in the database; stop the service and add --yes",
              file=sys.stderr)
        return 2
    try:
        restore(load_settings().database_url, Path(args.source))
    except BackupError as exc:
        print(f"hotline: {exc}", file=sys.stderr)
        return 2
    print("database restored; run `hotline migrate` if the backup is older than this version")
    return 0


def cmd_seed_demo(args: argparse.Namespace) -> int:
    from hotline.demo import seed_demo
    from hotline.services import build_services

    services = build_services(load_settings(), load_model=False)
    created = seed_demo(services, force=args.force)
    print("demo city seeded" if created else "database already holds data; demo not seeded (use --force)")
    return 0


def cmd_users_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from hotline.db import make_engine, make_sessionmaker
    from hotline.models import Unit, User

    sessions = make_sessionmaker(make_engine(load_settings().database_url))
    with sessions() as session:
        rows = session.execute(
            select(User, Unit.name).outerjoin(Unit, Unit.id == User.unit_id).order_by(User.id)
        ).all()
    if args.json:
        print(json.dumps([{"username": u.username, "role": u.role, "unit_id": u.unit_id} for u, _ in rows],
                         ensure_ascii=False))
    else:
        for user, unit_name in rows:
            print(f"{user.username:<24} {user.role:<13} {user.display_name}  {unit_name or ''}".rstrip())
    return 0


def cmd_users_create(args: argparse.Namespace) -> int:
    from hotline.accounts import UserIn, create_account
    from hotline.db import make_engine, make_sessionmaker, transaction
    from hotline.errors import DomainError

    try:
        body = UserIn(username=args.username, display_name=args.name or args.username, password=args.password,
                      role=args.role, unit_id=args.unit_id)
    except ValidationError as exc:
        print("hotline: " + "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors()), file=sys.stderr)
        return 2
    sessions = make_sessionmaker(make_engine(load_settings().database_url))
    try:
        with transaction(sessions) as session:
            user = create_account(session, body)
            print(f"created user {user.username} (id {user.id}, {user.role})")
    except DomainError as exc:
        print(f"hotline: {exc.message}", file=sys.stderr)
        return 2
    return 0


LONG_RUNNING = ("serve", "worker")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's own setting for multiprocess mode


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hotline", description="12345 政务服务便民热线")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="serve the API and the desk")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--workers", type=int, default=1)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("worker", help="run deadline sweeps, reminders and callbacks")
    p.add_argument("--once", action="store_true", help="one sweep, then exit")
    p.set_defaults(func=cmd_worker)

    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)

    p = sub.add_parser("backup", help="back up the database (PostgreSQL: pg_dump -Fc; SQLite: online backup)")
    p.add_argument("--out", required=True, help="the backup file to write")
    p.set_defaults(func=cmd_backup)
    p = sub.add_parser("restore", help="replace the database's contents with a backup (service stopped)")
    p.add_argument("--from", dest="source", required=True, help="a file written by `hotline backup`")
    p.add_argument("--yes", action="store_true", help="yes, replace the database's contents")
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser("seed-demo", help="load the demo city if the database is empty")
    p.add_argument("--force", action="store_true", help="seed even if data exists (adds to it)")
    p.set_defaults(func=cmd_seed_demo)

    users = sub.add_parser("users", help="list or create users").add_subparsers(dest="users_command", required=True)
    p = users.add_parser("list")
    p.add_argument("--json", action="store_true", help="print [{username, role, unit_id}]")
    p.set_defaults(func=cmd_users_list)
    p = users.add_parser("create")
    p.add_argument("username")
    p.add_argument("--password", required=True)
    p.add_argument("--role", required=True, choices=["agent", "dispatcher", "unit_handler", "supervisor", "admin"])
    p.add_argument("--unit-id", type=int)
    p.add_argument("--name")
    p.set_defaults(func=cmd_users_create)

    for module in (nlp_cli, routing_commands, nlp_commands, channel_simulators, phone_commands, wechat_simulator):
        module.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # the long-running processes log for a collector (HOTLINE_LOG_FORMAT, JSON by default); one-off commands are
    # read by the person who typed them
    logs.configure(None if args.command in LONG_RUNNING else "text")
    handler = getattr(args, "func", None) or args.handler
    result: int = handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
