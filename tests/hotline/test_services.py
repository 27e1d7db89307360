"""The services of a long-running process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SERVE_ONE_PROCESS = """
import gc, json
from hotline.app import create_served_app
create_served_app()
print(json.dumps({"frozen": gc.get_freeze_count(), "walked": len(gc.get_objects())}))
"""


def test_a_serving_process_keeps_its_lasting_heap_out_of_full_collections(tmp_path: Path) -> None:
    # hotline serve's factory, in a process of its own (what is frozen is never collected: not in the test process)
    env = {**os.environ, "HOTLINE_DEMO": "1", "HOTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
           "HOTLINE_MODEL_DIR": str(tmp_path / "model")}
    subprocess.run([sys.executable, "-m", "hotline.cli", "migrate"], cwd=REPO, env=env, check=True,
                   capture_output=True, timeout=120)
    out = subprocess.run([sys.executable, "-c", SERVE_ONE_PROCESS], cwd=REPO, env=env, check=True,
                         capture_output=True, text=True, timeout=120)
    heap = json.loads(out.stdout.strip().splitlines()[-1])
    # the app, its routes and the libraries' objects are frozen; a full collection walks only what came after
    assert heap["frozen"] > 50_000
    assert heap["walked"] < heap["frozen"] / 20
