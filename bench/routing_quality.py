"""Does the demo city route colloquial requests to the right unit? (issue 13's "Done means")

Trains the starter model exactly as ``hotline nlp starter`` does (seed corpus + the demo city's words), loads the
demo city's directory, catalogue and knowledge base into a throwaway SQLite database, and runs every request of
``tests/hotline/data/routing_requests.json`` through the same analysis intake uses. Prints the share of requests
whose suggested lead unit is one the centre accepts, emergencies flagged with their line, consultations typed as
such (and never auto-dispatched), areas and place texts; then every miss.

    .venv/bin/python bench/routing_quality.py [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hotline.nlp_commands import demo_words, train_starter  # noqa: E402
from hotline.suggester import CitySuggester  # noqa: E402
from tests.hotline.routing_fixture import SEED_CORPUS, demo_city, load_requests, run, summary  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    args = parser.parse_args()
    t0 = time.perf_counter()
    model = train_starter(SEED_CORPUS, demo_words())
    train_s = time.perf_counter() - t0
    requests = load_requests()
    with tempfile.TemporaryDirectory() as tmp:
        services = demo_city(f"sqlite:///{Path(tmp) / 'routing.db'}")
        suggester = CitySuggester(services.sessions, services.knowledge_search, model)
        outcomes = run(services, suggester, requests)
        services.engine.dispose()
    report = summary(outcomes)
    report["train_s"] = round(train_s, 1)
    report["model_labels"] = len(model.labels)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return
    print(f"## Routing quality on {report['requests']} demo-city requests (starter model, {len(model.labels)} "
          f"labels, trained in {train_s:.1f} s)\n")
    print("| measure | value |\n|---|---|")
    for key, value in report.items():
        if key not in ("requests", "train_s", "model_labels"):
            print(f"| {key} | {value} |")
    print("\n### Misses\n")
    for o in outcomes:
        r, s = o.request, o.suggestion
        problems = []
        if not o.unit_right:
            problems.append(f"unit {o.unit_code} ({o.category}; {s.route_explanation}) not in {list(r.accept)}")
        if r.urgent and not o.emergency_right:
            problems.append(f"emergency {s.urgent}/{s.emergency_line}, wanted {list(r.emergency) or 'urgent'}")
        if r.kind == "consultation" and (s.kind != "consultation" or s.auto_dispatch):
            problems.append(f"kind {s.kind}, auto-dispatch {s.auto_dispatch}")
        if not o.area_right:
            problems.append(f"area {s.area_code}, wanted {r.area}")
        if not o.place_right:
            problems.append(f"place {s.place!r}, wanted {r.place!r}")
        if problems:
            print(f"- {r.text[:40]}…: " + "; ".join(problems))


if __name__ == "__main__":
    main()
