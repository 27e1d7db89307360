"""``hotline nlp starter`` and ``hotline nlp retrain``: the model commands that need the city's database.

``nlp train`` / ``nlp evaluate`` (in ``nlp.cli``) work on files only; these two read the directory (place and
unit names for the segmenter's dictionary) and the ticket history.

Labels are category paths ("城市管理/市容秩序/占道经营", see nlp.taxonomy): the seed corpus is written that way and
a city ticket's final category is turned into its path; categories with fewer than ``MIN_LABEL_EXAMPLES`` examples
are learnt as part of their parent.

Retraining rule (decided here): train a candidate on the city's finished tickets — with their *final* category,
so agents' corrections count — plus the seed corpus, compare it with the current model on a held-out slice of the
city's newest tickets (those received after the current model was trained, when there are enough), and switch
only if its macro-F1 is not lower. The previous model is kept beside the new one
(``<model_dir>.previous``) so a bad switch can be undone by renaming a folder.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shutil
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.settings import load_settings

log = logging.getLogger(__name__)
MIN_CITY_TICKETS = 50
MIN_HELD_OUT = 20
#: a category with fewer training examples is learnt as part of its parent (see nlp.taxonomy.coarsen)
MIN_LABEL_EXAMPLES = 8


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


def coarse_records(records: list[Any]) -> list[Any]:
    """Records with thin categories merged into their parents, so every label has enough examples to learn."""
    from dataclasses import replace

    from nlp.taxonomy import coarsen

    target = coarsen([r.label for r in records], MIN_LABEL_EXAMPLES)
    return [replace(r, label=target[r.label]) for r in records]


def within_labels(records: list[Any], labels: list[str]) -> list[Any]:
    """Records relabelled to their nearest category a model knows (held-out tickets judged at its granularity)."""
    from dataclasses import replace

    from nlp.taxonomy import parent

    known = set(labels)
    out = []
    for r in records:
        label: str | None = r.label
        while label is not None and label not in known:
            label = parent(label)
        out.append(replace(r, label=label or r.label))
    return out


def train_starter(seed_corpus: Path, words: list[str]) -> Any:
    """The starter model: the seed corpus's category paths (thin ones merged upwards) and the city's words."""
    from nlp.classifier import Model, load_records

    records, info = load_records([seed_corpus])
    return Model.train(coarse_records(records), user_words=words, data_info=info)


def cmd_starter(args: argparse.Namespace) -> int:
    """Make sure a model is loaded: train the starter model from the seed corpus if there is none."""
    from hotline.db import make_engine, make_sessionmaker
    from nlp.classifier import IncompatibleModelError, Model

    settings = load_settings()
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
    model = train_starter(settings.seed_corpus, words)
    model.save(model_dir)
    val = model.metadata.get("validation", {})
    print(f"starter model trained on {model.metadata['training_data']['records']} seed examples "
          f"({len(model.labels)} categories, validation macro-F1 {val.get('macro_f1')}) -> {model_dir}")
    return 0


@dataclass(frozen=True)
class CityRecord:
    record: Any  # nlp.classifier.Record
    ticket_id: int
    received_at: datetime


def city_records(session: Session) -> list[CityRecord]:
    """Finished tickets with their final category as a path from the first level (agents' corrections included),
    oldest first.

    The path is found by walking ``parent_id`` up, not by cutting the code, so a city whose codes are not two
    characters per level works as well.
    """
    from hotline.models import Category, Status, Ticket
    from nlp.classifier import Record
    from nlp.taxonomy import SEPARATOR

    parents = {cid: (parent, name) for cid, parent, name in session.execute(
        select(Category.id, Category.parent_id, Category.name))}

    def path_name(cid: int) -> str | None:
        names: list[str] = []
        seen: set[int] = set()
        current: int | None = cid
        while current is not None and current in parents and current not in seen:
            seen.add(current)
            names.append(parents[current][1])
            current = parents[current][0]
        return SEPARATOR.join(reversed(names)) if names else None

    rows = session.execute(
        select(Ticket.id, Ticket.title, Ticket.text, Ticket.category_id, Ticket.received_at)
        .where(Ticket.category_id.is_not(None),
               Ticket.status.in_([Status.closed, Status.callback, Status.answered, Status.replied]))
        .order_by(Ticket.received_at, Ticket.id)
    )
    records = []
    for ticket_id, title, text, category_id, received_at in rows:
        label = path_name(category_id) if category_id is not None else None
        if label:
            records.append(CityRecord(Record(text=text, label=label, title=title or "", form="raw"), ticket_id,
                                      received_at))
    return records


def split_history(history: list[CityRecord], share: float, old_model_created: datetime | None
                  ) -> tuple[list[CityRecord], list[CityRecord], bool]:
    """(train, held out, whether the current model may have seen the held-out tickets).

    The held-out slice is the newest tickets — what the next model will face — and, when the current model's
    training date is known, only tickets received after it, so the comparison is not rigged in the old model's
    favour by tickets it was trained on. If too few such tickets exist, the newest ``share`` is used and the
    report says the old model may have seen them.
    """
    n_held = max(MIN_HELD_OUT, round(len(history) * share))
    unseen = [r for r in history if old_model_created is not None and r.received_at > old_model_created]
    if old_model_created is not None and len(unseen) >= MIN_HELD_OUT:
        held = unseen[-n_held:]
        seen_by_old = False
    else:
        held = history[-n_held:]
        seen_by_old = old_model_created is not None
    held_ids = {r.ticket_id for r in held}
    return [r for r in history if r.ticket_id not in held_ids], held, seen_by_old


def _history_info(records: list[CityRecord], seed_info: dict[str, Any]) -> dict[str, Any]:
    digest = hashlib.sha256(seed_info.get("sha256", "").encode())
    for r in records:
        digest.update(f"{r.ticket_id}\t{r.record.label}\n".encode())
    return {"files": [*seed_info.get("files", []), "city tickets"], "sha256": digest.hexdigest(),
            "records": seed_info.get("records", 0) + len(records), "city_tickets": len(records)}


def cmd_retrain(args: argparse.Namespace) -> int:
    from hotline.db import make_engine, make_sessionmaker
    from nlp.classifier import DataError, IncompatibleModelError, Model, load_records

    if not 0.05 <= args.holdout <= 0.5:
        print("hotline: --holdout is a share between 0.05 and 0.5", file=sys.stderr)
        return 2
    settings = load_settings()
    model_dir = Path(settings.model_dir)
    sessions = make_sessionmaker(make_engine(settings.database_url))
    with sessions() as session:
        history = city_records(session)
        words = city_words(session)
    if len(history) < MIN_CITY_TICKETS:
        print(f"hotline: only {len(history)} closed, classified tickets; retraining needs at least "
              f"{MIN_CITY_TICKETS}", file=sys.stderr)
        return 2
    seed, seed_info = load_records([settings.seed_corpus])
    current: Model | None = None
    if (model_dir / "metadata.json").exists():
        try:
            current = Model.load(model_dir)
        except IncompatibleModelError as exc:
            print(f"hotline: the current model cannot be loaded ({exc}); comparing against none", file=sys.stderr)
    created = None  # when the current model last saw city tickets; a starter model has seen none
    if current is not None and current.metadata.get("training_data", {}).get("city_tickets"):
        created = datetime.fromisoformat(str(current.metadata["created"]))
    train_part, held_out, seen_by_old = split_history(history, args.holdout, created)
    try:
        candidate = Model.train(coarse_records([*seed, *(r.record for r in train_part)]), user_words=words,
                                data_info=_history_info(train_part, seed_info))
    except DataError as exc:
        print("hotline: " + "; ".join(exc.problems), file=sys.stderr)
        return 2
    held_records = within_labels([r.record for r in held_out], candidate.labels)
    new = candidate.evaluate(held_records)
    old = None if current is None else current.evaluate(held_records)
    keys = ("macro_f1", "accuracy", "model_version")
    report: dict[str, Any] = {
        "held_out": len(held_out),
        "held_out_from": held_out[0].received_at.isoformat(),
        "old_model_may_have_seen_them": seen_by_old,
        "old": None if old is None else {k: old[k] for k in keys},
        "new": {k: new[k] for k in keys},
    }
    better = old is None or new["macro_f1"] >= old["macro_f1"]
    report["switched"] = bool(better and not args.dry_run)
    if report["switched"]:
        final = Model.train(coarse_records([*seed, *(r.record for r in history)]), user_words=words,
                            data_info=_history_info(history, seed_info))
        final.metadata["retrain_report"] = report
        _switch(model_dir, final)
    print(json.dumps(report, ensure_ascii=False))
    if not better:
        print("hotline: the new model is worse on the held-out tickets; kept the current one", file=sys.stderr)
    return 0


def _switch(model_dir: Path, model: Any) -> None:
    """Save beside the live model, then swap folders, so a failed save never leaves the city without a model.
    The previous model stays in ``<model_dir>.previous``: undoing a bad switch is renaming a folder."""
    staging = model_dir.with_name(model_dir.name + ".new")
    previous = model_dir.with_name(model_dir.name + ".previous")
    shutil.rmtree(staging, ignore_errors=True)
    model.save(staging)
    if model_dir.exists():
        shutil.rmtree(previous, ignore_errors=True)
        model_dir.rename(previous)
    staging.rename(model_dir)


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
