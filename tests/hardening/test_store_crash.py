"""SIGKILL in the middle of writing: the capture store reopens intact, every flushed row in it."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from harness.store.capture_store import CaptureStore
from memory_proxy.litellm_env import LITELLM_OFFLINE_ENV

REPO = Path(__file__).resolve().parents[2]
FLUSHED = 300

# The child writes FLUSHED pairs, waits for them to be committed, says so, then keeps
# writing (a batch may be mid-transaction) until it is killed.
CHILD = textwrap.dedent(
    """
    import itertools, sys
    from harness.store.capture_store import CaptureStore
    from tests.harness.builders import chat_observation, make_pair

    store = CaptureStore(sys.argv[1], batch_size=16)
    def pair(i):
        return make_pair(
            chat_observation(), chat_observation(target="legacy"), request_id=f"req-{i}"
        )
    for i in range(int(sys.argv[2])):
        store.put(pair(i))
    assert store.flush(30), "flush timed out"
    print("flushed", sys.argv[2], flush=True)
    for i in itertools.count(int(sys.argv[2])):
        store.put(pair(i))
    """
)


def test_sigkill_while_writing_keeps_every_flushed_row(tmp_path: Path) -> None:
    db = tmp_path / "shadow.db"
    env = {**os.environ, **LITELLM_OFFLINE_ENV, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db), str(FLUSHED)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.strip() == f"flushed {FLUSHED}", (line, child.stderr and child.stderr.read())
        time.sleep(0.3)  # let it get well into the next batches
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL

    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute("SELECT count(*) FROM pairs").fetchone()[0]
    finally:
        conn.close()
    assert rows >= FLUSHED

    # And the harness's own reader opens it, and a new writer appends to it.
    with CaptureStore(db, spill=False) as store:
        assert store.count() == rows
        ids = {stored.pair.request.request_id for stored in store.iter_pairs()}
        assert {f"req-{i}" for i in range(FLUSHED)} <= ids
