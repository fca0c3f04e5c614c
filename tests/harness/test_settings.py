"""``config/harness.yaml`` as settings: the shipped file loads, bad values name themselves."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.settings import load_harness_settings
from memory_proxy.errors import ConfigError

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "harness.yaml"


def test_the_shipped_file_loads_with_the_mirror_uncapped() -> None:
    settings = load_harness_settings(SHIPPED)
    assert settings.shadow.max_rate == 0
    assert settings.shadow.sample_rate == 100
    assert settings.with_overrides("shadow", max_rate=25).shadow.max_rate == 25.0
    assert settings.shadow.upstream == "replay"  # the mirror never reaches the provider
    assert settings.shadow.drain_seconds == 10  # a stop never waits minutes on the mirror
    # Live mode, if chosen: the mirror's memory apart from the user's, its spend uncapped.
    assert settings.shadow.live_suffix == "-shadow"
    assert (settings.shadow.live_budget_requests, settings.shadow.live_budget_tokens) == (0, 0)


def test_the_live_budget_reads_as_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "harness.yaml"
    path.write_text(
        "shadow:\n  upstream: live\n  live_budget:\n    requests: 500\n    tokens: 2000000\n",
        encoding="utf-8",
    )
    shadow = load_harness_settings(path).shadow
    assert (shadow.live_budget_requests, shadow.live_budget_tokens) == (500, 2_000_000)


@pytest.mark.parametrize(
    ("shadow", "message"),
    [
        ("max_rate: -1", "shadow.max_rate: expected >= 0"),
        ("max_rate: fast", "shadow.max_rate: expected a number"),
        ("sample_rate: 150", "shadow.sample_rate: expected a percentage"),
        ("mirror_nice: 30", "shadow.mirror_nice: expected 0-19"),
        ("drain_seconds: -1", "shadow.drain_seconds: expected >= 0"),
        ("drain_seconds: soon", "shadow.drain_seconds: expected a number"),
        ("backpressure_latency_seconds: 0", "shadow.backpressure_latency_seconds: expected > 0"),
        ("max_in_flight: 0", "shadow.max_in_flight: expected >= 1"),
        ("rate_cap: 5", "shadow.rate_cap: unknown setting"),
        ("upstream: mirror", "shadow.upstream: expected replay or live"),
        ("replay_listen: '8080'", "shadow.replay_listen: expected HOST:PORT"),
        ("relay_listen: nowhere", "shadow.relay_listen: expected HOST:PORT"),
        ("live_budget: 100", "shadow.live_budget: expected a mapping"),
        ("live_budget: {dollars: 5}", "shadow.live_budget: expected a mapping"),
        ("live_budget: {requests: -1}", "shadow.live_budget: expected counts >= 0"),
        ("upstream: live\n  live_suffix: ''", "shadow.live_suffix: live mirroring needs"),
    ],
)
def test_bad_shadow_values_are_refused_by_name(tmp_path: Path, shadow: str, message: str) -> None:
    path = tmp_path / "harness.yaml"
    path.write_text(f"shadow:\n  {shadow}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_harness_settings(path)


def test_a_team_store_url_and_the_instance_id(tmp_path: Path) -> None:
    path = tmp_path / "harness.yaml"
    path.write_text(
        "capture:\n  store: os.environ/TEAM_STORE_URL\n  instance: alice-laptop\n",
        encoding="utf-8",
    )
    capture = load_harness_settings(path).capture
    assert (capture.store, capture.instance) == ("os.environ/TEAM_STORE_URL", "alice-laptop")
    path.write_text("capture:\n  store: postgresql://team@db.internal/shadow\n", encoding="utf-8")
    capture = load_harness_settings(path).capture
    assert capture.store == "postgresql://team@db.internal/shadow"  # not folded into a Path
    assert capture.instance == ""  # the store fills in the host name
    path.write_text("capture:\n  store: reports/mine.db\n", encoding="utf-8")
    assert load_harness_settings(path).capture.store == Path("reports/mine.db")
