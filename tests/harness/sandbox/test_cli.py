from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from harness.sandbox import FaultSettings, SandboxSettings, add_arguments, settings_from_args
from harness.sandbox.__main__ import main


def _parse(*argv: str) -> SandboxSettings:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return settings_from_args(parser.parse_args(list(argv)))


def test_defaults_match_the_settings_defaults() -> None:
    assert _parse() == SandboxSettings()


def test_every_option_reaches_the_settings() -> None:
    settings = _parse(
        "--host", "0.0.0.0", "--port", "9200", "--model", "a", "--model", "b",
        "--require-cookie", "--nondeterministic", "--seed", "11", "--capture-limit", "50",
        "--latency-ms", "5", "--latency-jitter-ms", "2", "--ttft-ms", "7", "--chunk-delay-ms", "3",
        "--error-rate-429", "0.1", "--error-rate-503", "0.2", "--error-rate-500", "0.3",
        "--malformed-json-rate", "0.4", "--stream-cut-rate", "0.5",
    )  # fmt: skip
    assert settings == SandboxSettings(
        host="0.0.0.0",
        port=9200,
        models=("a", "b"),
        require_cookie=True,
        nondeterministic=True,
        seed=11,
        capture_limit=50,
        faults=FaultSettings(
            latency_ms=5,
            latency_jitter_ms=2,
            ttft_ms=7,
            chunk_delay_ms=3,
            error_rate_429=0.1,
            error_rate_503=0.2,
            error_rate_500=0.3,
            malformed_json_rate=0.4,
            stream_cut_rate=0.5,
        ),
    )


def test_out_of_range_values_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--error-rate-429", "2"])
    assert exited.value.code == 2
    assert "error_rate_429" in capsys.readouterr().err


def test_module_entry_point_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "harness.sandbox", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0
    assert "--port" in result.stdout and "--stream-cut-rate" in result.stdout
