"""Imported first by the ``hotline`` command: prometheus_client opens its files in ``PROMETHEUS_MULTIPROC_DIR`` when
the first metric is made, which the command's own imports already do (``hotline.metrics``), so a directory the
caller names must exist before them. ``hotline serve --workers N`` then empties it (``hotline.cli.cmd_serve``)."""

import os
from pathlib import Path

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
