"""Cross-validated quality of the category classifier on raw messages (../shared/data).

Protocol: 5-fold stratified CV over the rows with form == "raw"; each fold trains on every other row (the other
raw rows and all segmented rows) with ``Model.train`` (so the configuration is chosen inside the fold, as
``hotline nlp train`` chooses it) and predicts its raw rows. Prints markdown tables: macro-F1 per fold and the
configuration each fold chose, per-label figures, the reliability table of the pooled out-of-fold predictions,
and the auto-dispatch threshold chosen on them (>= 97 % correct). ``--baseline`` adds the floor (sklearn char
1-3-gram TF-IDF + LinearSVC).

    .venv/bin/python bench/nlp_quality.py [--folds 5] [--baseline]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.svm import LinearSVC

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nlp.classifier import (  # noqa: E402
    Model,
    choose_threshold,
    classification_metrics,
    load_records,
    reliability_table,
)

DATA = ROOT / ".." / "shared" / "data" / "complaints_labelled.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--baseline", action="store_true")
    args = parser.parse_args()
    if not DATA.exists():
        sys.exit(f"shared data not found at {DATA}")
    records, _ = load_records([DATA])
    items = [(r.title, r.text) for r in records]
    y = np.array([r.label for r in records])
    raw = np.array([i for i, r in enumerate(records) if r.form == "raw"])
    labels = sorted(set(y.tolist()))
    skf = StratifiedKFold(args.folds, shuffle=True, random_state=0)
    proba = np.zeros((len(records), len(labels)))
    base_pred = np.empty(len(records), dtype=object)
    fold_f1, base_f1, seconds, chosen = [], [], [], []
    for _, te_raw in skf.split(raw, y[raw]):
        test = raw[te_raw]
        mask = np.ones(len(records), dtype=bool)
        mask[test] = False
        train = np.nonzero(mask)[0]
        t0 = time.perf_counter()
        model = Model.train([records[i] for i in train], n_jobs=2)
        seconds.append(time.perf_counter() - t0)
        chosen.append(model.metadata["selection"]["chosen"])
        p = model.predict_proba([items[i] for i in test])
        proba[test] = p
        fold_f1.append(f1_score(y[test], np.array(labels)[p.argmax(1)], average="macro"))
        if args.baseline:
            base = make_pipeline(
                TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True), LinearSVC(C=1.0)
            )
            base.fit([f"{items[i][0]} {items[i][1]}" for i in train], y[train])
            base_pred[test] = base.predict([f"{items[i][0]} {items[i][1]}" for i in test])
            base_f1.append(f1_score(y[test], base_pred[test].astype(str), average="macro"))
    p_raw = proba[raw]
    pred = np.array(labels)[p_raw.argmax(1)]
    top = p_raw.max(1)
    correct = pred == y[raw]
    metrics = classification_metrics(y[raw], pred, labels)
    print(f"## Category classifier, {args.folds}-fold CV over {len(raw)} raw messages\n")
    print("| model | macro-F1 (mean of folds) | per fold | macro-F1 pooled | accuracy pooled |")
    print("|---|---|---|---|---|")
    print(
        f"| `hotline nlp train` (chose: {', '.join(chosen)}) | "
        f"{np.mean(fold_f1):.4f} | "
        f"{' '.join(f'{f:.3f}' for f in fold_f1)} | {metrics['macro_f1']:.4f} | {metrics['accuracy']:.4f} |"
    )
    if args.baseline:
        bp = base_pred[raw].astype(str)
        print(
            f"| floor: sklearn char 1-3 TF-IDF + LinearSVC | {np.mean(base_f1):.4f} | "
            f"{' '.join(f'{f:.3f}' for f in base_f1)} | {f1_score(y[raw], bp, average='macro'):.4f} | "
            f"{float(np.mean(bp == y[raw])):.4f} |"
        )
    print(f"\nmean training time per fold (2 cores, every candidate): {np.mean(seconds):.1f} s\n")
    print("| label | precision | recall | F1 | support |\n|---|---|---|---|---|")
    for label, m in metrics["per_label"].items():
        print(f"| {label} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |")
    print("\n| top probability | count | accuracy | mean probability |\n|---|---|---|---|")
    for row in reliability_table(top, correct):
        acc = "-" if row["accuracy"] is None else f"{row['accuracy']:.3f}"
        mp = "-" if row["mean_probability"] is None else f"{row['mean_probability']:.3f}"
        print(f"| {row['lo']:.2f}-{row['hi']:.2f} | {row['count']} | {acc} | {mp} |")
    high = top >= 0.9
    print(f"\nprobability >= 0.9: {int(high.sum())} predictions ({high.mean():.1%}), {correct[high].mean():.1%} right")
    threshold, share, gate_acc = choose_threshold(top, correct, 0.97)
    print(f"auto-dispatch threshold for >= 97 % correct: {threshold:.4f}; share {share:.1%}; accuracy {gate_acc}")


if __name__ == "__main__":
    main()
