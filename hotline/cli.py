"""The ``hotline`` command: serve, worker, migrate, seed-demo, users, nlp, calendar, wechat simulate.

Exit codes: 0 success, 2 bad input (one line on stderr saying what to fix), 1 anything else.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from channels import simulate as channel_simulators
from channels.phone import simulate as phone_commands
from hotline import nlp_commands, routing_commands
from hotline.settings import load_settings
from nlp import cli as nlp_cli
from wechat_bot import simulator as wechat_simulator


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from agent_ui.hub import FRAME_MAX_BYTES

    settings = load_settings()
    uvicorn.run(
        "hotline.app:create_app",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=args.workers,
        log_level="info",
        proxy_headers=True,
        ws_max_size=FRAME_MAX_BYTES,
    )
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from hotline.worker import run_forever

    run_forever(load_settings(), once=args.once)
    return 0


def cmd_migrate(_args: argparse.Namespace) -> int:
    from hotline.migrate import upgrade

    upgrade(load_settings().database_url)
    print("database is at the latest schema")
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
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    handler = getattr(args, "func", None) or args.handler
    result: int = handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
