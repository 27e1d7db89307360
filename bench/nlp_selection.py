"""Does training's choice of configuration generalise? Nested cross-validation over several taxonomies.

For each taxonomy built from the data we have (../shared/data and the seed corpus), an outer stratified K-fold
splits off test rows; on the rest, training fits every candidate, scores them by its own internal out-of-fold
validation and chooses one (``fit_candidates`` + ``select``, exactly what ``Model.train`` does); the outer
test rows then score the chosen model and, for comparison, every candidate and scikit-learn's plain
char 1-3-gram TF-IDF + LinearSVC (the reference the issue measures against). Selection must never pick
something worse than the plain baseline by more than noise, on any taxonomy.

    .venv/bin/python bench/nlp_selection.py [--folds 3] [--only NAME ...] [--extra]

``--extra`` also fits candidates that are not shipped (the word blocks alone, the previous pipeline) and
reports their outer scores beside the others; training's choice stays among the shipped ``CANDIDATES``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.svm import LinearSVC

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nlp.classifier import CANDIDATES, Candidate, Record, fit_candidates, load_records, select  # noqa: E402
from nlp.segment import DOMAIN_TERMS, Segmenter  # noqa: E402

DATA = ROOT / ".." / "shared" / "data" / "complaints_labelled.jsonl"
SEED = ROOT / "nlp" / "data" / "seed_corpus.jsonl"
EXTRA = (
    Candidate("words", words=True, raw_chars=False, balanced=True, decide="svm"),
    Candidate("words+stacker", words=True, raw_chars=False, balanced=True, decide="stacker"),
)


@dataclass(frozen=True)
class Taxonomy:
    name: str
    records: list[Record]
    test_raw_only: bool  # outer test rows are the raw rows only (the others always train), as production is raw


def taxonomies() -> list[Taxonomy]:
    gov, _ = load_records([DATA])
    seed, _ = load_records([SEED])
    four = {"城乡建设", "商贸旅游", "环境保护", "交通运输"}
    titled = [replace(r, text=r.title, title="") for r in gov if r.title.strip()]
    return [
        Taxonomy("government, 7 labels, raw held out", gov, True),
        Taxonomy("segmented rows only", [replace(r, form=None) for r in gov if r.form == "segmented"], False),
        Taxonomy("raw rows only", [replace(r, form=None) for r in gov if r.form == "raw"], False),
        Taxonomy(
            "4 labels (城乡建设 商贸旅游 环境保护 交通运输), raw held out", [r for r in gov if r.label in four], True
        ),
        Taxonomy("titles only", [replace(r, form=None) for r in titled], False),
        Taxonomy(
            "short messages (<= 120 characters)",
            [replace(r, form=None) for r in gov if len(r.title) + len(r.text) <= 120],
            False,
        ),
        Taxonomy("seed corpus, 16 categories", seed, False),
    ]


def plain_reference() -> Callable[[list[str], np.ndarray, list[str]], np.ndarray]:
    def run(train: list[str], y: np.ndarray, test: list[str]) -> np.ndarray:
        pipe = make_pipeline(TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True), LinearSVC())
        return np.asarray(pipe.fit(train, y).predict(test))

    return run


def evaluate(tax: Taxonomy, candidates: tuple[Candidate, ...], folds: int) -> dict[str, object]:
    records = tax.records
    items = [(r.title, r.text) for r in records]
    y = np.array([r.label for r in records])
    raw = np.array([r.form == "raw" for r in records])
    testable = np.nonzero(raw)[0] if tax.test_raw_only else np.arange(len(records))
    segmenter = Segmenter(DOMAIN_TERMS)
    outer = StratifiedKFold(folds, shuffle=True, random_state=0)
    per_candidate: dict[str, list[float]] = {c.name: [] for c in candidates}
    chosen_f1: list[float] = []
    chosen_names: list[str] = []
    reference: list[float] = []
    seconds: list[float] = []
    reference_fn = plain_reference()
    for _, te in outer.split(testable, y[testable]):
        test = testable[te]
        train_mask = np.ones(len(records), dtype=bool)
        train_mask[test] = False
        train = np.nonzero(train_mask)[0]
        tr_items = [items[i] for i in train]
        te_items = [items[i] for i in test]
        pool = raw[train] if raw[train].any() and not raw[train].all() else np.ones(len(train), dtype=bool)
        t0 = time.perf_counter()
        trials = fit_candidates(tr_items, y[train], pool, candidates, segmenter=segmenter, n_jobs=2)
        best = select([t for t in trials if t.candidate in CANDIDATES])
        seconds.append(time.perf_counter() - t0)
        labels = sorted(set(y[test].tolist()))
        for trial in trials:
            trial.pipeline.named_steps["clf"].decide = trial.candidate.decide
            pred = trial.pipeline.predict(te_items)
            f1 = float(f1_score(y[test], pred, labels=labels, average="macro"))
            per_candidate[trial.candidate.name].append(f1)
            if trial is best:
                chosen_f1.append(f1)
                chosen_names.append(trial.candidate.name)
        ref = reference_fn([f"{t} {x}" for t, x in tr_items], y[train], [f"{t} {x}" for t, x in te_items])
        reference.append(float(f1_score(y[test], ref, labels=labels, average="macro")))
    return {
        "taxonomy": tax.name,
        "rows": len(records),
        "labels": len(set(y.tolist())),
        "tested": len(testable),
        "chosen": chosen_names,
        "chosen_f1": float(np.mean(chosen_f1)),
        "chosen_folds": chosen_f1,
        "reference_f1": float(np.mean(reference)),
        "candidates": {name: float(np.mean(v)) for name, v in per_candidate.items()},
        "train_seconds": float(np.mean(seconds)),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--only", nargs="*", help="taxonomy names starting with these words")
    parser.add_argument("--extra", action="store_true", help="add the experimental candidates")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args()
    if not DATA.exists():
        sys.exit(f"shared data not found at {DATA}")
    candidates = CANDIDATES + (EXTRA if args.extra else ())
    results = []
    for tax in taxonomies():
        if args.only and not any(tax.name.startswith(o) for o in args.only):
            continue
        result = evaluate(tax, candidates, args.folds)
        results.append(result)
        print(json.dumps(result, ensure_ascii=False), file=sys.stderr, flush=True)
    names = [c.name for c in candidates]
    print(f"## Nested {args.folds}-fold CV: chosen configuration vs. every candidate (outer macro-F1)\n")
    print(
        "| taxonomy | rows | labels | sklearn plain (reference) | "
        + " | ".join(names)
        + " | **chosen by training** | chosen per fold | training s / fold |"
    )
    print("|---|---|---|---|" + "---|" * len(names) + "---|---|---|")
    for r in results:
        cand = r["candidates"]
        assert isinstance(cand, dict)
        print(
            f"| {r['taxonomy']} | {r['rows']} | {r['labels']} | {r['reference_f1']:.4f} | "
            + " | ".join(f"{cand[n]:.4f}" for n in names)
            + f" | **{r['chosen_f1']:.4f}** | {', '.join(r['chosen'])} | {r['train_seconds']:.1f} |"  # type: ignore[arg-type]
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
