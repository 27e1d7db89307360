"""The README's first command on a fresh clone: `make run` installs, migrates, seeds and serves the demo city."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_make_run_on_a_fresh_clone_serves_healthz_and_agent_login(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True, timeout=120)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOTLINE_", "VIRTUAL_ENV"))}
    env.update(HOTLINE_PORT=str(port), PATH=os.environ["PATH"])
    log = (tmp_path / "make-run.log").open("w")
    proc = subprocess.Popen(["make", "run"], cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = (tmp_path / "make-run.log").read_text()[-3000:]
                pytest.fail(f"make run exited with {proc.returncode}:\n{tail}")
            try:
                if httpx.get(f"{base}/healthz", timeout=2).json() == {"status": "ok"}:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(2)
        else:
            pytest.fail("make run did not serve /healthz within 15 minutes")
        token = httpx.post(f"{base}/api/auth/login", json={"username": "agent", "password": "agent123"}, timeout=10)
        assert token.status_code == 200, token.text
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        tickets = httpx.get(f"{base}/api/tickets?page_size=1", headers=headers, timeout=10).json()
        assert tickets["total"] >= 200, "the demo city should hold a few hundred tickets"
        assert httpx.get(f"{base}/", timeout=10).status_code == 200
        # The README's commands work as written right after `make run`, in a shell where nothing is exported.
        for command in (["users", "list"], ["calendar", "add", "--start", "2026-09-30T16:00", "--hours", "8", "--city"],
                        ["directory", "export", str(tmp_path / "directory.xlsx")]):
            done = subprocess.run([str(clone / ".venv" / "bin" / "hotline"), *command], cwd=clone, env=env,
                                  capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, f"hotline {' '.join(command)}: {done.stderr[-2000:]}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
