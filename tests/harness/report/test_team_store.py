"""A team's store: four proxy processes write into one PostgreSQL database at once; the
team report reads every proxy's pairs, each exactly once, and per instance it is what
each proxy would have reported alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from harness.report.evidence import collect_evidence
from harness.report.readiness import build_report
from harness.report.render_json import render_json, report_dict
from harness.report.render_md import render_markdown
from harness.runs.scope import parse_since
from harness.settings import HarnessSettings
from harness.store.runs import Scope
from tests.harness.report.factories import RUN
from tests.postgres import PostgresServer

REPO = Path(__file__).resolve().parents[3]
TEAM = ("alice", "bob", "carol", "dave")
EACH = 120  # pairs per proxy: every slot and family several times, seconds to write


@pytest.fixture(scope="module")
def team_store(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, dict[str, Path]]:
    url = postgres.create_database("team")
    folder = tmp_path_factory.mktemp("team")
    alone = {name: folder / f"{name}.db" for name in TEAM}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "src")])}
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.harness.report.team_writer",
                url,
                str(alone[name]),
                name,
                str(i * EACH),
                str(EACH),
            ],
            cwd=REPO,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i, name in enumerate(TEAM)
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=240)
        assert writer.returncode == 0, err
    return url, alone


def test_every_pair_of_every_proxy_is_stored_exactly_once(
    team_store: tuple[str, dict[str, Path]],
) -> None:
    url, _ = team_store
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT request_id, instance, count(*) FROM pairs GROUP BY 1, 2"
        ).fetchall()
        versions = conn.execute("SELECT version FROM schema_version ORDER BY 1").fetchall()
    expected = {(f"req-{i:06d}", TEAM[i // EACH]) for i in range(len(TEAM) * EACH)}
    assert {(r[0], r[1]) for r in rows} == expected
    assert {r[2] for r in rows} == {1}
    # Four processes migrated the empty database at once: each migration applied once.
    assert [v[0] for v in versions] == list(range(1, len(versions) + 1))


def test_the_team_report_is_the_union_of_what_each_proxy_reports_alone(
    team_store: tuple[str, dict[str, Path]],
) -> None:
    url, alone = team_store
    settings = HarnessSettings()
    team = collect_evidence(url, settings, RUN, workers=1)
    parts = [collect_evidence(alone[name], settings, RUN, workers=1) for name in TEAM]
    for name, part in zip(TEAM, parts, strict=True):
        mine = collect_evidence(url, settings, RUN, workers=1, scope=Scope(instance=name))
        assert render_json(build_report(mine, settings)) == render_json(
            build_report(part, settings)
        )
    union = parts[0]
    for part in parts[1:]:
        union.merge(part)
    assert team.pairs == union.pairs == len(TEAM) * EACH
    assert team.compared == union.compared
    assert team.endpoint_pairs == union.endpoint_pairs and team.family_pairs == union.family_pairs
    for endpoint, tally in union.diffs.items():
        assert (team.diffs[endpoint].compared, team.diffs[endpoint].categories) == (
            tally.compared,
            tally.categories,
        )
    assert team.instances == union.instances
    report = build_report(team, settings)
    assert report_dict(report)["decision"] == report_dict(build_report(union, settings))["decision"]
    shares = {row["instance"]: row for row in report_dict(report)["instances"]}
    assert sorted(shares) == list(TEAM) and sum(r["pairs"] for r in shares.values()) == team.pairs
    markdown = render_markdown(report)
    assert "Proxy instances (4)" in markdown
    assert "| claude-code | alice (" in markdown  # which proxies saw each client family


def test_one_misconfigured_proxy_stands_out(postgres: PostgresServer, tmp_path: Path) -> None:
    url = postgres.create_database("odd")
    from tests.harness.report.synthetic import build_store

    build_store(url, 140, "go", instance="good-1", load=False)
    build_store(url, 140, "go", first=140, instance="good-2", load=False)
    build_store(url, 140, "nogo", first=280, instance="odd-laptop", load=False)
    report = build_report(
        collect_evidence(url, HarnessSettings(), RUN, workers=1), HarnessSettings()
    )
    rates = {r.instance: (r.rate, r.others_rate) for r in report.instances}
    odd, rest = rates["odd-laptop"]
    assert odd is not None and rest is not None and odd > rest
    assert all(rate is not None and rate < odd for rate, _ in (rates["good-1"], rates["good-2"]))


def test_since_reads_only_the_newer_pairs(team_store: tuple[str, dict[str, Path]]) -> None:
    url, _ = team_store
    from tests.harness.report.synthetic import BASE_TIME

    # Pair i is received at BASE_TIME + i / 2: the last proxy's pairs start at 3 * EACH.
    since = BASE_TIME + 3 * EACH * 0.5
    from datetime import UTC, datetime

    stamp = datetime.fromtimestamp(since, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    evidence = collect_evidence(
        url, HarnessSettings(), RUN, workers=1, scope=Scope(since=parse_since(stamp))
    )
    assert evidence.pairs == EACH and set(evidence.instances) == {"dave"}


def test_harness_report_reads_a_postgresql_store_with_filters(
    team_store: tuple[str, dict[str, Path]], postgres: PostgresServer, tmp_path: Path
) -> None:
    from harness.report.cli import run as report_command
    from tests.harness.report.test_cli import _args

    url, _ = team_store
    code = report_command(_args(tmp_path, url, "--instance", "bob"))
    data = json.loads((tmp_path / "reports" / "latest" / "report.json").read_text(encoding="utf-8"))
    assert data["exit_code"] == code and data["context"]["pairs"] == EACH
    assert data["context"]["scope"] == "all runs, instance bob"
    assert data["context"]["store_path"] == url.replace(postgres.password, "***")
    html = (tmp_path / "reports" / "latest" / "report.html").read_text(encoding="utf-8")
    assert postgres.password not in html


def test_a_wrong_password_for_the_report_is_one_line_naming_the_flag(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    from harness.store.dialect import StoreUnavailable

    url = postgres.url("postgres", password="nope-wrong")
    with pytest.raises(
        StoreUnavailable,
        match=r"^--store: cannot open the PostgreSQL store .*password authentication failed",
    ):
        collect_evidence(url, HarnessSettings(), RUN)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-01", 1_796_083_200.0),
        ("2026-12-01T09:30Z", 1_796_117_400.0),
        ("2026-12-01T10:30+01:00", 1_796_117_400.0),
        ("24h", 1_000_000.0 - 86_400),
        ("90m", 1_000_000.0 - 5_400),
        ("7d", 1_000_000.0 - 7 * 86_400),
    ],
)
def test_since_takes_a_utc_time_or_an_age(text: str, expected: float) -> None:
    assert parse_since(text, now=1_000_000.0) == expected


def test_a_bad_since_names_the_flag() -> None:
    from harness.errors import HarnessError

    with pytest.raises(HarnessError, match=r"^--since 'last tuesday': expected an ISO time"):
        parse_since("last tuesday")
