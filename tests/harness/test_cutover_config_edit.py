from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cutover.config_edit import read_use_sdk, set_use_sdk

REAL = (Path(__file__).resolve().parents[2] / "config" / "config.yaml").read_text()


def test_flips_the_real_config_keeping_every_other_line() -> None:
    new, changed = set_use_sdk(REAL, True)
    assert changed and read_use_sdk(new)
    old_lines, new_lines = REAL.splitlines(), new.splitlines()
    assert len(old_lines) == len(new_lines)
    differing = [(a, b) for a, b in zip(old_lines, new_lines, strict=True) if a != b]
    assert differing == [("  use_sdk: false", "  use_sdk: true")]
    back, changed_back = set_use_sdk(new, False)
    assert changed_back and back == REAL


def test_idempotent() -> None:
    text, changed = set_use_sdk(REAL, False)
    assert not changed and text == REAL


@pytest.mark.parametrize(
    ("text", "expected_line"),
    [
        (
            "general_settings:\n  master_key: k  # keep me\nlitellm_settings: {}\n",
            "  use_sdk: true\n",
        ),
        ("general_settings:\n    master_key: k\n", "    use_sdk: true\n"),
        (
            "general_settings:\n  use_sdk: false   # flipped at cutover\n  master_key: k\n",
            "  use_sdk: true   # flipped at cutover\n",
        ),
        ("model_list: []\n", "  use_sdk: true\n"),
    ],
)
def test_inserts_or_replaces_in_place(text: str, expected_line: str) -> None:
    new, changed = set_use_sdk(text, True)
    assert changed and read_use_sdk(new)
    assert expected_line in new
    for line in text.splitlines():
        if "use_sdk" not in line:
            assert line in new  # comments and other lines survive


def test_cutover_reads_the_decision_harness_report_writes(tmp_path: Path) -> None:
    """The cutover gate reads a real rendered report.json (the report's golden file)."""
    from harness.cutover.switch import report_verdict

    golden = Path(__file__).resolve().parent / "report" / "golden" / "report.json"
    folder = tmp_path / "r"
    folder.mkdir()
    (folder / "report.json").write_text(golden.read_text())
    assert report_verdict(folder) == json.loads(golden.read_text())["decision"]
    assert report_verdict(tmp_path / "missing") is None
