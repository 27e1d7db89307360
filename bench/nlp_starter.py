"""How the starter model (trained only on the project's own seed corpus) does on real citizen messages.

The starter model knows category paths under 16 first-level categories (a path's probability counts for its first
level here); the shared labelled data uses 7 of them. Every shared record is scored,
and a prediction of one of the other 9 categories counts as wrong: that is what a city gets on day one, before
it trains on its own history. Also reported: the same figures when the prediction is restricted to the 7 labels
(argmax over those columns only), to separate "wrong bureau" from "a category this data set does not use".

    .venv/bin/python bench/nlp_starter.py [--form raw|segmented|all]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hotline.nlp_commands import demo_words, train_starter  # noqa: E402
from nlp.classifier import classification_metrics, load_records  # noqa: E402
from nlp.taxonomy import first_level  # noqa: E402

SEED = ROOT / "nlp" / "data" / "seed_corpus.jsonl"
DATA = ROOT / ".." / "shared" / "data" / "complaints_labelled.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--form", choices=["raw", "segmented", "all"], default="raw")
    args = parser.parse_args()
    if not DATA.exists():
        sys.exit(f"shared data not found at {DATA}")
    t0 = time.perf_counter()
    model = train_starter(SEED, demo_words())
    train_s = time.perf_counter() - t0
    records, _ = load_records([DATA])
    if args.form != "all":
        records = [r for r in records if r.form == args.form]
    shared_labels = sorted({r.label for r in records})
    # The starter's labels are category paths; a path counts as its first level here.
    tops = sorted({first_level(label) for label in model.labels})
    missing = sorted(set(shared_labels) - set(tops))
    if missing:
        sys.exit(f"the seed corpus lacks labels of the shared data: {missing}")
    leaf_proba = model.predict_proba([(r.title, r.text) for r in records])
    proba = np.zeros((len(records), len(tops)))
    for j, label in enumerate(model.labels):
        proba[:, tops.index(first_level(label))] += leaf_proba[:, j]
    y = np.array([r.label for r in records])
    labels = np.array(tops)
    pred_all = labels[proba.argmax(1)]
    cols = [tops.index(label) for label in shared_labels]
    pred_7 = np.array(shared_labels)[proba[:, cols].argmax(1)]
    full = classification_metrics(y, pred_all, shared_labels)
    seven = classification_metrics(y, pred_7, shared_labels)
    outside = float(np.mean(~np.isin(pred_all, shared_labels)))
    print(f"## Starter model ({len(model.labels)} category paths in {len(tops)} first-level categories, "
          f"{model.metadata['training_data']['records']} seed "
          f"examples, trained in {train_s:.1f} s) on {len(records)} shared '{args.form}' messages\n")
    print("| scoring | macro-F1 | accuracy |\n|---|---|---|")
    print(f"| all 16 categories (a non-shared category counts as wrong) | {full['macro_f1']:.4f} | "
          f"{full['accuracy']:.4f} |")
    print(f"| restricted to the 7 shared labels | {seven['macro_f1']:.4f} | {seven['accuracy']:.4f} |")
    print(f"\npredicted a category outside the 7: {outside:.1%}\n")
    print("| label | precision | recall | F1 | support |\n|---|---|---|---|---|")
    for label, m in full["per_label"].items():
        print(f"| {label} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |")


if __name__ == "__main__":
    main()
