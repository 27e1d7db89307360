"""Command line for the working calendar (``hotline calendar add|between|years``) and the unit directory
(``hotline directory import|export FILE``: .xlsx workbook or one .csv table with ``--kind``).

``add_commands(subparsers)`` registers the ``calendar`` command on the ``hotline`` CLI's subparsers; each
leaf parser sets ``handler`` (``Callable[[argparse.Namespace], int]``, returning the exit code).
``python -m hotline.routing_commands calendar add --start 2026-09-30T16:00 --hours 8`` also works alone.

A naive ``--start``/``--end`` is read in ``--tz`` (a person at a terminal means local time); the library
itself refuses naive datetimes. Results are printed in ISO 8601 with the offset, in ``--tz``. Bad input
prints one ``error:`` line on stderr and exits 2. By default the national schedule is used (what a policy means
anywhere); ``--city`` starts from the city's admin overrides and office hours, and ``--holiday``/``--workday``
try a schedule on top.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

from routing.calendar import DEFAULT_TZ, WorkCalendar

__all__ = ["add_commands", "main"]

EXIT_USAGE = 2


class CliError(Exception):
    """Bad user input: reported as one line, exit status 2."""


class _OneLineParser(argparse.ArgumentParser):
    """argparse prints usage + error; the hotline CLI prints a single line (scripts grep stderr)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError) as exc:  # ZoneInfoNotFoundError is a KeyError
        raise CliError(f"--tz: unknown time zone {name!r}") from exc


def _moment(text: str, option: str, zone: ZoneInfo) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise CliError(f"{option}: not an ISO 8601 date-time: {text!r}") from exc
    return value.replace(tzinfo=zone) if value.tzinfo is None else value


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise CliError(f"{option}: not an ISO 8601 date: {text!r}") from exc


def _calendar(args: argparse.Namespace, zone: ZoneInfo) -> WorkCalendar:
    overrides: dict[date, bool] = {}
    office_hours = None
    if getattr(args, "city", False):
        overrides, office_hours = _city_calendar(zone)
    for text in args.workday or ():
        overrides[_day(text, "--workday")] = True
    for text in args.holiday or ():
        day = _day(text, "--holiday")
        if overrides.get(day):
            raise CliError(f"{day.isoformat()} is given both as --workday and --holiday")
        overrides[day] = False
    if office_hours is None:
        return WorkCalendar(overrides=overrides, tz=zone)
    return WorkCalendar(overrides=overrides, tz=zone, office_hours=office_hours)


def _city_calendar(zone: ZoneInfo) -> tuple[dict[date, bool], Any]:
    """The city's own overrides and office hours (from HOTLINE_DATABASE_URL; office hours the admins set there, else
    HOTLINE_OFFICE_HOURS)."""
    from hotline.timing import Timing

    try:
        timing = Timing.from_database(_sessions(), str(zone))
    except Exception as exc:  # a missing or unmigrated database is the operator's to fix, in one line
        raise CliError(f"--city: cannot read the city's calendar from the database ({exc.__class__.__name__}: "
                       f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc
    return dict(timing.calendar.overrides), timing.calendar.office_hours


def _warn_unknown_years(cal: WorkCalendar, *moments: datetime) -> None:
    years = sorted({m.astimezone(cal.tz).year for m in moments} - cal.known_years())
    for year in years:
        print(f"warning: {year}年节假日安排未加载，按周一至周五为工作日计算", file=sys.stderr)


def _cmd_add(args: argparse.Namespace) -> int:
    zone = _zone(args.tz)
    cal = _calendar(args, zone)
    start = _moment(args.start, "--start", zone)
    if args.hours is not None:
        if not math.isfinite(args.hours):
            raise CliError("--hours must be a finite number")
        amount = timedelta(hours=args.hours)
    else:
        amount = timedelta(days=args.days) if args.clock else args.days * cal.working_day_length
    try:
        if args.clock:
            result = (start.astimezone(ZoneInfo("UTC")) + amount).astimezone(zone)
        else:
            result = cal.add_working_time(start, amount)
    except (OverflowError, ValueError) as exc:
        raise CliError(f"cannot compute the deadline: {exc}") from exc
    if not args.clock:
        _warn_unknown_years(cal, start, result)
    print(result.isoformat())
    return 0


def _cmd_between(args: argparse.Namespace) -> int:
    zone = _zone(args.tz)
    cal = _calendar(args, zone)
    start = _moment(args.start, "--start", zone)
    end = _moment(args.end, "--end", zone)
    if args.clock:
        span = end.astimezone(ZoneInfo("UTC")) - start.astimezone(ZoneInfo("UTC"))
    else:
        span = cal.working_time_between(start, end)
        _warn_unknown_years(cal, start, end)
    print(f"{span.total_seconds() / 3600:g}")
    return 0


def _cmd_years(args: argparse.Namespace) -> int:
    cal = WorkCalendar(tz=_zone(args.tz))
    years = sorted(cal.known_years())
    print(f"{years[0]}-{years[-1]}" if years == list(range(years[0], years[-1] + 1)) else years)
    for line in cal.schedule_warnings(datetime.now(cal.tz).date()):
        print(f"warning: {line}", file=sys.stderr)
    return 0


def _guarded(
    handler: Callable[[argparse.Namespace], int], name: str = "calendar"
) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except CliError as exc:
            print(f"hotline {name}: error: {exc}", file=sys.stderr)
            return EXIT_USAGE

    run.__doc__ = handler.__doc__
    return run


def _common(parser: argparse.ArgumentParser, *, overrides: bool = True) -> None:
    parser.add_argument("--tz", default=DEFAULT_TZ, help=f"city time zone (default {DEFAULT_TZ})")
    if overrides:
        parser.add_argument("--city", action="store_true",
                            help="start from the city's own schedule: admin overrides in the database and "
                                 "HOTLINE_OFFICE_HOURS (default: the national schedule, 08:30-12:00, 13:30-17:30)")
        parser.add_argument("--holiday", action="append", metavar="DATE", help="extra day off (repeatable)")
        parser.add_argument(
            "--workday", action="append", metavar="DATE", help="extra working day, e.g. 调休 (repeatable)"
        )


def add_commands(subparsers: Any) -> None:
    """Register ``calendar add|between|years`` on an ``argparse`` subparsers object."""
    cal = subparsers.add_parser("calendar", help="working-time calendar (holidays, 调休, office hours)")
    sub = cal.add_subparsers(dest="calendar_command", required=True, metavar="{add,between,years}")

    add = sub.add_parser(
        "add",
        help="deadline = start + working time",
        description="Print the moment a working-time (or --clock) span after --start ends.",
    )
    add.add_argument("--start", required=True, help="ISO 8601, e.g. 2026-09-30T16:00 (naive = --tz)")
    amount = add.add_mutually_exclusive_group(required=True)
    amount.add_argument("--hours", type=float, help="working hours (or clock hours with --clock)")
    amount.add_argument("--days", type=int, help="working days (or 24-hour days with --clock)")
    add.add_argument("--clock", action="store_true", help="count clock time, 7×24 (urgent tickets)")
    _common(add)
    add.set_defaults(handler=_guarded(_cmd_add))

    between = sub.add_parser("between", help="working hours between two moments (signed)")
    between.add_argument("--start", required=True)
    between.add_argument("--end", required=True)
    between.add_argument("--clock", action="store_true", help="clock hours instead of working hours")
    _common(between)
    between.set_defaults(handler=_guarded(_cmd_between))

    years = sub.add_parser("years", help="years whose holiday schedule is known")
    _common(years, overrides=False)
    years.set_defaults(handler=_guarded(_cmd_years))
    _add_directory(subparsers)


def _sessions() -> Any:
    from hotline.db import make_engine, make_sessionmaker
    from hotline.settings import get_settings

    return make_sessionmaker(make_engine(get_settings().database_url))


def _cmd_directory_import(args: argparse.Namespace) -> int:
    """All or nothing, like the API: every bad row is printed with its sheet and row number."""
    from hotline import directory
    from hotline.errors import Invalid

    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc}") from exc
    with _sessions()() as session:
        try:
            tables = directory.read_xlsx(data) if path.suffix.lower() == ".xlsx" else directory.read_csv(
                args.kind or path.stem, data)
            report = directory.import_directory(session, tables, dry_run=args.dry_run)
        except Invalid as exc:
            print(f"hotline directory: error: {exc.message}", file=sys.stderr)
            for error in exc.detail.get("errors", []):
                print(f"  {error['sheet']} 第{error['row']}行: {error['message']}", file=sys.stderr)
            return EXIT_USAGE
        if not args.dry_run:
            session.commit()
    print(f"created {report.created}, updated {report.updated}{' (dry run, nothing written)' if args.dry_run else ''}")
    return 0


def _cmd_directory_export(args: argparse.Namespace) -> int:
    from hotline import directory

    path = Path(args.file)
    with _sessions()() as session:
        data = directory.export_xlsx(session) if path.suffix.lower() == ".xlsx" else directory.export_csv(
            session, args.kind or path.stem)
    path.write_bytes(data)
    print(f"wrote {path}")
    return 0


def _add_directory(subparsers: Any) -> None:
    parser = subparsers.add_parser("directory", help="unit directory and dispatch catalogue as Excel/CSV files")
    sub = parser.add_subparsers(dest="directory_command", required=True, metavar="{import,export}")
    imp = sub.add_parser("import", help="import areas, units and catalogue rules (all or nothing)")
    imp.add_argument("file", help="a .xlsx workbook (sheets 地区, 单位, 派单目录) or a .csv table")
    imp.add_argument("--kind", choices=["areas", "units", "rules"], help="table of a .csv (default: file name)")
    imp.add_argument("--dry-run", action="store_true", help="check only, write nothing")
    imp.set_defaults(handler=_guarded(_cmd_directory_import, "directory"))
    exp = sub.add_parser("export", help="export the directory to .xlsx (all tables) or .csv (--kind)")
    exp.add_argument("file")
    exp.add_argument("--kind", choices=["areas", "units", "rules"])
    exp.set_defaults(handler=_guarded(_cmd_directory_export, "directory"))


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry point: ``python -m hotline.routing_commands calendar add ...``."""
    parser = _OneLineParser(prog="hotline", description="12345 hotline: routing tools")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
