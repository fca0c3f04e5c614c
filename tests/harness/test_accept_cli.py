"""`harness accept`: a rule written into harness.yaml, comments kept, config check passed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from harness.cli import main
from harness.observation import Observation
from harness.paths import HARNESS_CONFIG
from harness.settings import load_harness_settings
from harness.store.capture_store import CaptureStore
from tests.harness.builders import make_pair, messages_observation


def _error(target: str, status: int, kind: str) -> Observation:
    body = {"type": "error", "error": {"type": kind, "message": f"{target} says no"}}
    return Observation(target, status, {"content-type": "application/json"}, body=body)


@pytest.fixture
def harness_yaml(tmp_path: Path) -> Path:
    return Path(shutil.copyfile(HARNESS_CONFIG, tmp_path / "harness.yaml"))


def _comments(text: str) -> list[str]:
    return [line.split("#", 1)[1] for line in text.splitlines() if "#" in line]


def test_accept_from_a_gate_keeps_comments_and_passes_the_check(
    harness_yaml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = harness_yaml.read_text()
    argv = ["accept", "--harness-config", str(harness_yaml), "--gate", "parity: models"]
    argv += ["--path", "body.data[*].max_tokens", "--reason", "LiteLLM's extra field"]
    assert main([*argv, "--owner", "platform", "--expires", "2027-06-30"]) == 0
    after = harness_yaml.read_text()
    assert _comments(after) == _comments(before)  # every comment, in order
    assert set(before.splitlines()) - set(after.splitlines()) == {"  accept: []"}
    (rule,) = load_harness_settings(harness_yaml).compare.accept
    assert (rule.endpoints, rule.paths, rule.owner) == (
        ("models",),
        ("body.data[*].max_tokens",),
        "platform",
    )
    assert "added to compare.accept" in capsys.readouterr().out
    # A second rule goes after the first, in the same block list.
    argv[-3:] = ["body.first_id", "--reason", "LiteLLM orders its list differently"]
    assert main(argv) == 0
    rules = load_harness_settings(harness_yaml).compare.accept
    assert [r.paths for r in rules] == [("body.data[*].max_tokens",), ("body.first_id",)]
    assert yaml.safe_load(harness_yaml.read_text())["report"] == yaml.safe_load(before)["report"]


def test_accept_from_a_pair_and_refusing_an_sdk_outage(
    harness_yaml: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_path = tmp_path / "shadow.db"
    with CaptureStore(store_path) as store:
        store.put(
            make_pair(
                _error("sdk", 404, "not_found_error"),
                _error("legacy", 400, "invalid_request_error"),
                endpoint="messages",
                request_id="pair-404",
            )
        )
        store.put(
            make_pair(
                _error("sdk", 503, "overloaded_error"),
                messages_observation(target="legacy"),
                endpoint="messages",
                request_id="pair-outage",
            )
        )
    base = ["accept", "--harness-config", str(harness_yaml), "--store", str(store_path)]
    base += ["--config", str(tmp_path / "none.yaml"), "--reason", "deliberate"]
    before = harness_yaml.read_text()
    assert main([*base, "--pair", "pair-outage"]) == 2
    assert "refused" in capsys.readouterr().err
    assert harness_yaml.read_text() == before  # nothing written
    assert main([*base, "--pair", "missing"]) == 2
    assert main([*base, "--pair", "pair-404", "--name", "unknown-model"]) == 0
    (rule,) = load_harness_settings(harness_yaml).compare.accept
    assert rule.name == "unknown-model" and rule.endpoints == ("messages",)
    assert rule.status is not None
    assert (set(rule.status.sdk), set(rule.status.legacy)) == ({404}, {400})
    assert "body.error.type" in rule.paths and "status" in rule.paths
    # The same name twice is refused: names identify rules in reports.
    assert main([*base, "--pair", "pair-404", "--name", "unknown-model"]) == 2
