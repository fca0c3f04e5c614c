"""The PostgreSQL back end's own behaviour, on a real server: start-up failures named
once, a server that goes away and comes back, credentials from the environment.

(Everything the two back ends share is tested on both in ``test_store.py``.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.loopback import free_port
from harness.observation import CapturedPair
from harness.store.capture_store import CaptureStore
from harness.store.dialect import StoreUnavailable, safe_url
from harness.store.schema import SCHEMA_VERSION
from tests.harness.builders import chat_observation, make_pair
from tests.postgres import PostgresServer


def _pair(i: int) -> CapturedPair:
    return make_pair(chat_observation(), chat_observation(target="legacy"), request_id=f"req-{i}")


def test_a_wrong_password_fails_at_start_naming_the_setting(postgres: PostgresServer) -> None:
    url = postgres.create_database()
    wrong = url.replace(postgres.password, "not-the-password-3f9")
    with pytest.raises(StoreUnavailable) as caught:
        CaptureStore(wrong)
    message = str(caught.value)
    assert message.startswith("capture.store: cannot open the PostgreSQL store")
    assert "password authentication failed" in message
    assert "not-the-password-3f9" not in message and "\n" not in message


def test_an_unreachable_server_fails_at_start(postgres: PostgresServer) -> None:
    url = f"postgresql://harness:pw@127.0.0.1:{free_port()}/x"
    with pytest.raises(StoreUnavailable, match=r"^--store: cannot open the PostgreSQL store"):
        CaptureStore(url, setting="--store")


def test_a_bad_url_fails_at_start() -> None:
    with pytest.raises(StoreUnavailable, match=r"^capture\.store: not a PostgreSQL URL"):
        CaptureStore("postgresql://harness:pw@127.0.0.1/x?no_such_option=1")


def test_credentials_come_from_the_environment(
    postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = postgres.create_database()
    monkeypatch.setenv("TEAM_STORE_URL", url)
    with CaptureStore("os.environ/TEAM_STORE_URL") as store:
        store.put(_pair(0))
        assert store.flush(10)
        assert store.count() == 1 and store.backend == "postgresql"
        assert postgres.password not in store.display_name
    assert safe_url(url) == url.replace(postgres.password, "***")
    monkeypatch.delenv("TEAM_STORE_URL")
    with pytest.raises(StoreUnavailable, match="TEAM_STORE_URL is not set"):
        CaptureStore("os.environ/TEAM_STORE_URL")


def test_a_restarted_server_loses_no_pair_and_the_spill_is_replayed(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    url = postgres.create_database()
    store = CaptureStore(url, spill_path=tmp_path / "spill.jsonl")
    try:
        for i in range(5):
            store.put(_pair(i))
        assert store.flush(30)
        postgres.stop()
        try:
            for i in range(5, 10):
                store.put(_pair(i))
            assert store.flush(30)
            down = store.health()
            # Held for the retry, and the health says why.
            assert down.spilled == 5 and down.failed_writes >= 1 and not down.ok
            assert down.lost == 0 and down.last_error
        finally:
            postgres.restart()
        store.put(_pair(10))
        assert store.flush(30)
    finally:
        store.close()
    health = store.health()
    assert (health.written, health.spilled, health.spill_file_rows, health.lost) == (11, 0, 0, 0)
    assert not (tmp_path / "spill.jsonl").exists()
    with CaptureStore(url, spill=False) as reader:
        ids = sorted(s.pair.request.request_id for s in reader.iter_pairs())
        assert reader.schema_version() == SCHEMA_VERSION
    assert ids == sorted(f"req-{i}" for i in range(11))  # each exactly once


def test_harness_shadow_refuses_an_unreachable_store_before_starting_anything(
    postgres: PostgresServer,
    sandbox_config_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from harness.cli import main

    wrong = postgres.url("postgres", password="wrong-pw-81c")
    code = main(["shadow", "--config", str(sandbox_config_path), "--store", wrong, "--port", "0"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "capture.store: cannot open the PostgreSQL store" in err
    assert "wrong-pw-81c" not in err
