"""``nlp train`` / ``nlp evaluate``: train a category model from JSONL and measure it.

Run as ``hotline nlp ...`` (the contract) or ``python -m nlp.cli ...``. Bad input (unreadable file, bad
records, too few labels, incompatible model) exits with code 2 and one line on stderr, as a CLI should: the
operator fixes the data, no traceback needed.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import sys
from collections.abc import Sequence
from typing import Any

from nlp.classifier import DataError, IncompatibleModelError, Model, load_records

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_memory() -> None:
    """Batch commands: let glibc keep freed heap memory for the next allocation instead of handing it back.

    Vectorising a batch allocates and frees the same few-MB arrays over and over. By default glibc returns
    freed memory at the top of the heap to the kernel (and serves blocks above its dynamic mmap threshold
    with fresh mappings), so every step paid page faults on memory it had just released: about a third of
    ``evaluate``'s time on this VM (BENCHMARKS.md). A fixed 32 MiB mmap threshold and 256 MiB trim threshold
    keep the working set mapped. Not glibc (macOS, musl): nothing to do.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return
    mallopt(_M_MMAP_THRESHOLD, 32 << 20)
    mallopt(_M_TRIM_THRESHOLD, 256 << 20)


def _train(args: argparse.Namespace) -> int:
    keep_freed_memory()
    records, info = load_records(args.data)
    words: list[str] = []
    if args.words:
        with open(args.words, encoding="utf-8") as fh:
            words = [line.strip() for line in fh if line.strip()]
    model = Model.train(records, data_info=info, user_words=words)
    out = model.save(args.out)
    val = model.metadata["validation"]
    auto = model.metadata["auto_dispatch"]
    summary = {
        "model_dir": str(out),
        "model_version": model.version,
        "labels": model.labels,
        "records": len(records),
        "validation_macro_f1": val.get("macro_f1"),
        "chosen": model.metadata["selection"]["chosen"],
        "candidates": {c["name"]: c["macro_f1"] for c in model.metadata["selection"]["candidates"]},
        "auto_dispatch_threshold": auto["threshold"],
        "auto_dispatch_share": auto["share"],
        "training_seconds": model.metadata["training_seconds"],
    }
    print(json.dumps(summary, ensure_ascii=False, indent=None if args.json else 2))
    return 0


def _table(result: dict[str, Any]) -> str:
    lines = [
        f"macro-F1 {result['macro_f1']:.4f}  accuracy {result['accuracy']:.4f}  n={result['n']}  "
        f"{result['msgs_per_s']} msgs/s",
    ]
    selection = result.get("selection")
    if selection:
        scores = ", ".join(f"{c['name']} {c['macro_f1']:.4f}" for c in selection["candidates"])
        lines.append(f"configuration {selection['chosen']} (validation macro-F1: {scores})")
    lines += [
        "",
        "| label | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
    ]
    for label, m in result["per_label"].items():
        lines.append(f"| {label} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |")
    lines += ["", "| probability | count | accuracy |", "|---|---|---|"]
    for row in result["reliability"]:
        acc = "-" if row["accuracy"] is None else f"{row['accuracy']:.3f}"
        lines.append(f"| {row['lo']:.2f}-{row['hi']:.2f} | {row['count']} | {acc} |")
    auto = result["auto_dispatch"]
    lines.append(f"\nauto-dispatch threshold {auto['threshold']}: share {auto['share']}, accuracy {auto['accuracy']}")
    return "\n".join(lines)


def _evaluate(args: argparse.Namespace) -> int:
    keep_freed_memory()
    model = Model.load(args.model)
    records, _ = load_records(args.data)
    result = model.evaluate(records)
    print(json.dumps(result, ensure_ascii=False) if args.json else _table(result))
    return 0


def add_commands(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``nlp train`` and ``nlp evaluate`` to an argparse subparsers object; returns the ``nlp`` parser."""
    nlp = subparsers.add_parser("nlp", help="train and evaluate the category classifier")
    sub = nlp.add_subparsers(dest="nlp_command", required=True)
    train = sub.add_parser("train", help="train a model from JSONL records {text, label, title?}")
    train.add_argument(
        "--data",
        action="append",
        required=True,
        metavar="FILE.jsonl",
        help="training records; repeat for several files",
    )
    train.add_argument("--out", required=True, metavar="MODEL_DIR", help="directory to write the model to")
    train.add_argument("--words", metavar="FILE.txt", help="city dictionary, one word a line (places, units)")
    train.add_argument("--json", action="store_true", help="one-line JSON summary")
    train.set_defaults(nlp_func=_train, func=run)
    ev = sub.add_parser("evaluate", help="evaluate a model on labelled JSONL records")
    ev.add_argument("--model", required=True, metavar="MODEL_DIR")
    ev.add_argument("--data", action="append", required=True, metavar="FILE.jsonl")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.set_defaults(nlp_func=_evaluate, func=run)
    return nlp


def run(args: argparse.Namespace) -> int:
    """Execute a parsed ``nlp`` command; bad input -> exit code 2 with one line on stderr."""
    try:
        return int(args.nlp_func(args))
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except IncompatibleModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except (FileNotFoundError, NotADirectoryError, PermissionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nlp.cli")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_commands(subparsers)
    args = parser.parse_args(
        ["nlp", *argv]
        if argv is not None and argv[:1] != ["nlp"]
        else (
            list(argv) if argv is not None else (sys.argv[1:] if sys.argv[1:2] == ["nlp"] else ["nlp", *sys.argv[1:]])
        )
    )
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
