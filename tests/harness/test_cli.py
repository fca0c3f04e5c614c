"""``harness``: every command in the table parses, and a user's error is a message, exit 2."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.cli import COMMANDS, build_parser, main


def test_every_command_in_the_table_has_its_arguments_and_its_runner() -> None:
    parser = build_parser()
    for entry, _, _ in COMMANDS:
        name = entry.rstrip("*")
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args([name, "--help"])
        assert exit_info.value.code == 0


@pytest.fixture
def keep_sigterm() -> Iterator[None]:
    """``main`` installs its SIGTERM handler: put pytest's back afterwards."""
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


@pytest.mark.usefixtures("keep_sigterm")
def test_a_harness_error_is_one_line_and_exit_2_never_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "broken.jsonl"
    corpus.write_text('{"id": "x"}\n')
    code = main(["replay", str(corpus), "--target", "http://127.0.0.1:9", "--key", "k"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("harness replay: ")
    assert "missing fields" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("flag", ["--sample-rate", "--health-rate"])
@pytest.mark.parametrize("value", ["150", "-1", "ten"])
def test_a_shadow_rate_outside_0_to_100_is_refused_before_anything_starts(
    flag: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["shadow", flag, value])
    assert exit_info.value.code == 2
    assert f"argument {flag}: expected a percentage 0-100, got {value}" in capsys.readouterr().err
    assert (
        build_parser().parse_args(["shadow", flag, "40"]).__dict__[flag[2:].replace("-", "_")] == 40
    )
