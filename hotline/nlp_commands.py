"""``hotline nlp starter`` and ``hotline nlp retrain``: the model commands that need the city's database.

``nlp train`` / ``nlp evaluate`` (in ``nlp.cli``) work on files only; these two read the directory (place and
unit names for the segmenter's dictionary) and the ticket history.

Retraining rule (decided here): train a candidate on the city's closed tickets — with their *final* category,
so agents' corrections count — plus the seed corpus, compare it with the current model on a held-out slice of the
city's own tickets, and switch only if its macro-F1 is not lower. The previous model is kept beside the new one
(``<model_dir>.previous``) so a bad switch can be undone by renaming a folder.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)
MIN_CITY_TICKETS = 50


def city_words(session: Session) -> list[str]:
    """Place names, their aliases and unit names: they must stay whole words for the segmenter."""
    from hotline.models import Area, Unit

    words: list[str] = []
    for name, aliases in session.execute(select(Area.name, Area.aliases)):
        words.append(name)
        words.extend(aliases or [])
    for name, short in session.execute(select(Unit.name, Unit.short_name)):
        words.extend(w for w in (name, short) if w)
    return sorted({w for w in words if len(w) >= 2})


def demo_words() -> list[str]:
    from hotline.demo import DATA

    words: list[str] = []
    for row in json.loads((DATA / "areas.json").read_text(encoding="utf-8")):
        words.extend([row["name"], *row.get("aliases", [])])
    for row in json.loads((DATA / "units.json").read_text(encoding="utf-8")):
        words.extend(w for w in (row["name"], row.get("short_name")) if w)
    return sorted({w for w in words if len(w) >= 2})


def cmd_starter(args: argparse.Namespace) -> int:
    """Make sure a model is loaded: train the starter model from the seed corpus if there is none."""
    from hotline.cli import _settings
    from hotline.db import make_engine, make_sessionmaker
    from nlp.classifier import IncompatibleModelError, Model, train_from_files

    settings = _settings()
    model_dir = Path(args.out or settings.model_dir)
    if (model_dir / "metadata.json").exists() and not args.force:
        try:
            Model.load(model_dir)
            print(f"model present in {model_dir}")
            return 0
        except IncompatibleModelError as exc:
            print(f"hotline: {exc}; training a new starter model", file=sys.stderr)
    sessions = make_sessionmaker(make_engine(settings.database_url))
    with sessions() as session:
        words = city_words(session)
    if not words and settings.demo:
        words = demo_words()
    model = train_from_files([settings.seed_corpus], user_words=words)
    model.save(model_dir)
    val = model.metadata.get("validation", {})
    print(f"starter model trained on {model.metadata['training_data']['records']} seed examples "
          f"({len(model.labels)} categories, validation macro-F1 {val.get('macro_f1')}) -> {model_dir}")
    return 0


def city_records(session: Session) -> list[Any]:
    """Closed tickets with their final first-level category (agents' corrections included)."""
    from hotline.models import Category, Status, Ticket
    from nlp.classifier import Record

    names = {code: name for code, name in session.execute(select(Category.code, Category.name))}
    rows = session.execute(
        select(Ticket.title, Ticket.text, Category.code)
        .join(Category, Category.id == Ticket.category_id)
        .where(Ticket.status.in_([Status.closed, Status.callback, Status.answered, Status.replied]))
    )
    records = []
    for title, text, code in rows:
        label = names.get(code[:2])
        if label:
            records.append(Record(text=text, label=label, title=title or "", form="raw"))
    return records


def cmd_retrain(args: argparse.Namespace) -> int:
    from sklearn.model_selection import train_test_split

    from hotline.cli import _settings
    from hotline.db import make_engine, make_sessionmaker
    from nlp.classifier import DataError, Model, load_records

    settings = _settings()
    model_dir = Path(settings.model_dir)
    sessions = make_sessionmaker(make_engine(settings.database_url))
    with sessions() as session:
        history = city_records(session)
        words = city_words(session)
    if len(history) < MIN_CITY_TICKETS:
        print(f"hotline: only {len(history)} closed, classified tickets; retraining needs at least "
              f"{MIN_CITY_TICKETS}", file=sys.stderr)
        return 2
    seed, _ = load_records([settings.seed_corpus])
    labels = [r.label for r in history]
    counts = {label: labels.count(label) for label in set(labels)}
    stratify = labels if min(counts.values()) >= 2 else None
    train_part, held_out = train_test_split(history, test_size=args.holdout, random_state=0, stratify=stratify)
    try:
        candidate = Model.train([*seed, *train_part], user_words=words)
    except DataError as exc:
        print("hotline: " + "; ".join(exc.problems), file=sys.stderr)
        return 2
    new = candidate.evaluate(held_out)
    old: dict[str, Any] | None = None
    if (model_dir / "metadata.json").exists():
        old = Model.load(model_dir).evaluate(held_out)
    report = {
        "held_out": len(held_out),
        "old": None if old is None else {k: old[k] for k in ("macro_f1", "accuracy", "model_version")},
        "new": {k: new[k] for k in ("macro_f1", "accuracy", "model_version")},
    }
    better = old is None or new["macro_f1"] >= old["macro_f1"]
    report["switched"] = bool(better and not args.dry_run)
    if report["switched"]:
        final = Model.train([*seed, *history], user_words=words)
        final.metadata["retrain_report"] = report
        previous = model_dir.with_name(model_dir.name + ".previous")
        if model_dir.exists():
            shutil.rmtree(previous, ignore_errors=True)
            model_dir.rename(previous)
        final.save(model_dir)
    print(json.dumps(report, ensure_ascii=False))
    if not better:
        print("hotline: the new model is worse on the held-out tickets; kept the current one", file=sys.stderr)
    return 0


def add_commands(sub: Any) -> None:
    nlp_parser = sub.choices.get("nlp") or sub.add_parser("nlp", help="text model: train, evaluate, retrain")
    nlp_sub = next((a for a in nlp_parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    if nlp_sub is None:
        nlp_sub = nlp_parser.add_subparsers(dest="nlp_command", required=True)
    p = nlp_sub.add_parser("starter", help="train the starter model from the seed corpus if no model is loaded")
    p.add_argument("--out", help="model directory (default HOTLINE_MODEL_DIR)")
    p.add_argument("--force", action="store_true", help="retrain even if a model is present")
    p.set_defaults(func=cmd_starter)
    p = nlp_sub.add_parser("retrain", help="retrain from closed tickets + seed corpus; switch only if not worse")
    p.add_argument("--holdout", type=float, default=0.2, help="share of the city's tickets held out (0.2)")
    p.add_argument("--dry-run", action="store_true", help="report old vs new, switch nothing")
    p.set_defaults(func=cmd_retrain)
