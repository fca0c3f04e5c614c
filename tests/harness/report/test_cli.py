"""``harness report``: exit codes for GO / NO-GO / INCONCLUSIVE stores, files, ``latest``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from harness.report.cli import add_arguments as add_report_arguments
from harness.report.cli import run as report_command
from memory_proxy.errors import ConfigError
from tests.harness.report.synthetic import build_store

HARNESS_YAML = Path(__file__).resolve().parents[3] / "config" / "harness.yaml"


def _args(tmp_path: Path, store: Path | str, *extra: str) -> argparse.Namespace:
    config = tmp_path / "config.yaml"
    config.write_text("model_list: []\n", encoding="utf-8")
    parser = argparse.ArgumentParser()
    add_report_arguments(parser)
    return parser.parse_args(
        [
            "--store",
            str(store),
            "--out",
            str(tmp_path / "reports"),
            "--harness-config",
            str(HARNESS_YAML),
            "--config",
            str(config),
            *extra,
        ]
    )


@pytest.mark.parametrize(
    ("mood", "pairs", "code", "decision"),
    [("go", 400, 0, "GO"), ("nogo", 400, 1, "NO-GO"), ("inconclusive", 30, 2, "INCONCLUSIVE")],
)
def test_exit_codes_and_files(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mood: str,
    pairs: int,
    code: int,
    decision: str,
) -> None:
    store = build_store(tmp_path / "shadow.db", pairs, mood)
    assert report_command(_args(tmp_path, store)) == code
    latest = tmp_path / "reports" / "latest"
    assert latest.is_symlink()
    for name in ("report.md", "report.html", "report.json"):
        assert (latest / name).is_file()
    data = json.loads((latest / "report.json").read_text(encoding="utf-8"))
    assert (data["decision"], data["exit_code"]) == (decision, code)
    context = data["context"]
    assert len(context["config_sha256"]) == 64 and context["project_version"]
    assert context["litellm_version"] not in ("", "unknown")
    out = capsys.readouterr().out
    assert out.startswith(f"Cutover readiness: {decision}")
    assert "report.html" in out


def test_latest_moves_to_the_newest_report(tmp_path: Path) -> None:
    store = build_store(tmp_path / "shadow.db", 30, "inconclusive")
    report_command(_args(tmp_path, store))
    first = (tmp_path / "reports" / "latest").resolve()
    report_command(_args(tmp_path, store))
    second = (tmp_path / "reports" / "latest").resolve()
    assert first != second and first.is_dir() and second.is_dir()


def test_latest_falls_back_to_a_text_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise OSError("symlinks not allowed here")

    monkeypatch.setattr(Path, "symlink_to", refuse)
    store = build_store(tmp_path / "shadow.db", 30, "inconclusive")
    report_command(_args(tmp_path, store))
    latest = tmp_path / "reports" / "latest"
    assert latest.is_file() and not latest.is_symlink()
    assert Path(latest.read_text(encoding="utf-8").strip(), "report.html").is_file()


def test_missing_store_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no capture store"):
        report_command(_args(tmp_path, tmp_path / "nothing.db"))
    assert not (tmp_path / "nothing.db").exists()  # not created by looking
