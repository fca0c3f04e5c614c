"""The capture store's disk fills up: every pair is written, kept for a retry, put in the
spill file or counted as lost, never dropped silently; ``put`` never raises or blocks.

The disk is a real one: a tmpfs of a few hundred KB mounted for the test (it needs the
privilege to mount, which the CI machine has; elsewhere the test says why it skips).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.observation import CapturedPair
from harness.store.capture_store import CaptureStore
from tests.harness.builders import chat_observation, make_pair, reply

DISK_KB = 384
PAIRS = 300  # ~5 KB each as rows: several times the disk


def _mount(path: Path, size_kb: int, *options: str) -> subprocess.CompletedProcess[bytes]:
    opts = ",".join([f"size={size_kb}k", *options])
    return subprocess.run(
        ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True, check=False
    )


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = _mount(disk, DISK_KB)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _grow(disk: Path, size_kb: int) -> None:
    result = _mount(disk, size_kb, "remount")
    assert result.returncode == 0, result.stderr


def _pair(i: int) -> CapturedPair:
    text = f"answer {i} " + "x" * 4000
    return make_pair(
        chat_observation(reply(text)),
        chat_observation(reply(text), target="legacy"),
        request_id=f"req-{i}",
    )


def test_a_full_disk_is_counted_and_the_rows_written_once_it_has_room(tiny_disk: Path) -> None:
    store = CaptureStore(tiny_disk / "shadow.db", spill_limit=100_000)
    assert all(store.put(_pair(i)) for i in range(PAIRS))  # accepted: failures are the writer's
    assert store.flush(30)
    full = store.health()
    assert full.failed_writes >= 1 and not full.ok
    assert "full" in (full.last_error or "")  # SQLite's "database or disk is full"
    assert full.written < PAIRS
    assert full.written + full.spilled + full.spill_file_rows + full.lost == PAIRS
    assert full.lost == 0  # nothing given up on yet: held in memory for a retry

    _grow(tiny_disk, 16 * 1024)  # space freed
    store.close()  # the held rows are retried and written
    done = store.health()
    assert (done.written, done.spilled, done.lost) == (PAIRS, 0, 0)
    ids = sorted(int(p.pair.request.request_id[4:]) for p in store.iter_pairs())
    assert ids == list(range(PAIRS))


def test_rows_that_cannot_be_written_anywhere_are_reported_lost(tiny_disk: Path) -> None:
    # The spill file is on the same full disk: at close nothing more can be saved.
    store = CaptureStore(tiny_disk / "shadow.db", spill_limit=50)
    for i in range(PAIRS):
        store.put(_pair(i))
    store.close()
    health = store.health()
    assert health.lost > 0 and not health.ok
    # Every accepted pair is accounted for: in the database, in the file, or lost (counted).
    assert health.written + health.spill_file_rows + health.lost == PAIRS
    assert health.spilled == 0
    # What was committed is readable.
    assert CaptureStore(tiny_disk / "shadow.db").count() == health.written
