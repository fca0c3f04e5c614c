"""Malformed captures in a real store: the report finishes, says what it could not compare.

Bad rows go in by raw SQL beside good pairs: text that is not JSON (cut short, ``NaN``,
not UTF-8, nested too deeply), JSON of the wrong shape (missing keys, wrong types, an
impossible date) and pairs the comparison cannot take (a stream event whose ``delta`` is
a string, an upstream sequence number too big for a float, a body nested deeper than the
comparator recurses). Each bad row carries a fake secret and a fake prompt: neither may
reach the report, only the row id and a reason.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.compare import Comparator
from harness.replay.record import record
from harness.report.capture_gate import READABLE_GATE
from harness.report.collect import EvidenceCollector
from harness.report.evidence import collect_evidence
from harness.report.model import Decision, ReadinessReport, Status
from harness.report.readiness import build_report
from harness.report.render_html import render_html
from harness.report.render_json import render_json
from harness.report.render_md import render_markdown
from harness.settings import HarnessSettings
from harness.store.capture_store import CaptureStore, StoredPair, UnreadableRow
from harness.store.pair_json import MalformedPair, pair_from_dict
from memory_proxy.litellm_env import LITELLM_OFFLINE_ENV
from tests.harness.report.factories import RUN
from tests.harness.report.synthetic import build_store

REPO = Path(__file__).resolve().parents[2]
GOOD_PAIRS = 392  # a "go" store: every gate passes on these alone (p95 needs 50 per side)
SECRET = "sk-ant-api03-FAKE-malformed-capture-secret-0123456789"
PROMPT = "my private prompt about the merger, do not repeat"
CONTENT = {"api_key": SECRET, "prompt": PROMPT}


# -- bad rows, each a change to a copy of a good row ---------------------------------------


def _deep(target: str, levels: int) -> str:
    """An observation whose body nests ``levels`` deep (as text: json.dumps would recurse)."""
    body = '{"a": ' * levels + json.dumps(CONTENT) + "}" * levels
    return f'{{"target": "{target}", "status": 200, "body": {body}}}'


def _with(column: str, change: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], None]:
    """Set ``column`` to the JSON text of ``change(parsed column)``."""

    def apply(row: dict[str, Any]) -> None:
        value = json.loads(row[column])
        row[column] = json.dumps(change(value))

    return apply


def _set(column: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(row: dict[str, Any]) -> None:
        row[column] = value

    return apply


def _sse_garbage(observation: dict[str, Any]) -> dict[str, Any]:
    chunk = {"choices": [{"index": 0, "delta": f"{SECRET} {PROMPT}"}]}
    events = observation["events"]
    events[1] = {"data": json.dumps(chunk), "event": None, "offset_ms": 1.0}
    return observation


# name -> (template row: chat stream or not, change, what the reason starts with)
BAD_ROWS: dict[str, tuple[bool, Callable[[dict[str, Any]], None], tuple[str, ...]]] = {
    "cut short": (
        False,
        _set("request_json", '{"request_id": "r", "body": ' + json.dumps(CONTENT)[:-3]),
        ("request_json: not JSON",),
    ),
    "NaN": (
        False,
        _set("primary_json", json.dumps({"target": "sdk", "status": 200, "body": float("nan")})),
        ("primary_json: NaN is not JSON",),
    ),
    "not UTF-8": (
        False,
        _set("shadow_json", b'{"target": "legacy", "body": "' + SECRET.encode() + b'\xff\xfe"}'),
        ("shadow_json: not UTF-8",),
    ),
    "nested too deeply to read": (
        False,
        _set("primary_json", _deep("sdk", 5000)),
        ("primary_json: nested too deeply to read",),
    ),
    "missing keys": (
        False,
        _set("request_json", json.dumps({"request_id": "r", **CONTENT})),
        ("request.received_at: missing",),
    ),
    "wrong type": (
        False,
        _with("primary_json", lambda o: {**o, "total_ms": SECRET}),
        ("primary.total_ms: expected a finite number or null, got string",),
    ),
    "an array for an object": (
        False,
        _set("request_json", json.dumps([SECRET, PROMPT])),
        ("request: expected an object, got array",),
    ),
    "a date no calendar has": (
        False,
        _with("request_json", lambda r: {**r, "received_at": 1e300, "body": CONTENT}),
        ("request.received_at: not a unix time",),
    ),
    "a number for an observation": (
        False,
        _set("shadow_json", 42),
        ("shadow: expected an object",),
    ),
    "garbage SSE event": (
        True,
        _with("shadow_json", _sse_garbage),
        ("comparison failed: AttributeError in _add_openai_choice",),
    ),
    # Legacy failed outright, so the pair is set apart and not compared; its live mirror
    # spend is still read from that answer's stream, and must not raise either.
    "garbage SSE event in a set-apart legacy failure": (
        True,
        _with("shadow_json", lambda o: {**_sse_garbage(o), "status": 502}),
        ("comparison failed: AttributeError in _add_openai_choice",),
    ),
    "upstream seq beyond floats": (
        False,
        _set(
            "upstream_json",
            '{"sdk": [{"seq": 1' + "0" * 400 + ', "headers": {"x-api-key": "' + SECRET + '"}}]}',
        ),
        ("comparison failed: OverflowError in upstream_calls",),
    ),
    # Readable or not depending on the stack depth at hand; never compared either way.
    "nested deeper than the comparator goes": (
        False,
        _set("shadow_json", _deep("legacy", 700)),
        ("comparison failed: RecursionError", "shadow_json: nested too deeply to read"),
    ),
}


def _insert(db: Path, stream: bool, change: Callable[[dict[str, Any]], None]) -> int:
    """A copy of the first good (chat, ``stream``) row, changed, inserted by plain SQL."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.row_factory = sqlite3.Row
    try:
        template = conn.execute(
            "SELECT * FROM pairs WHERE endpoint = 'chat' AND stream = ? ORDER BY id LIMIT 1",
            (int(stream),),
        ).fetchone()
        row = {k: template[k] for k in template.keys() if k != "id"}
        change(row)
        # Bytes go in as TEXT all the same: a column SQLite itself cannot decode.
        marks = ", ".join("CAST(? AS TEXT)" if isinstance(v, bytes) else "?" for v in row.values())
        cursor = conn.execute(
            f"INSERT INTO pairs ({', '.join(row)}) VALUES ({marks})", tuple(row.values())
        )
        return int(cursor.lastrowid or 0)
    finally:
        conn.close()


def _insert_bad_rows(db: Path, names: list[str]) -> dict[int, str]:
    return {_insert(db, BAD_ROWS[n][0], BAD_ROWS[n][1]): n for n in names}


@pytest.fixture(scope="module")
def good_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_store(tmp_path_factory.mktemp("good") / "shadow.db", GOOD_PAIRS, "go")


@pytest.fixture
def store(good_store: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "shadow.db"
    shutil.copy(good_store, copy)
    return copy


def _report(db: Path) -> ReadinessReport:
    settings = HarnessSettings()
    return build_report(collect_evidence(db, settings, RUN, workers=1), settings)


def _assert_no_content(text: str) -> None:
    assert SECRET not in text and PROMPT not in text
    assert "merger" not in text and "FAKE-malformed" not in text


# -- the store ------------------------------------------------------------------------------


def test_bad_rows_do_not_stop_the_readers(store: Path, tmp_path: Path) -> None:
    bad = _insert_bad_rows(store, ["cut short", "not UTF-8", "wrong type"])
    good_after = _insert(store, False, lambda row: None)  # a good row after the bad ones
    reader = CaptureStore(store, spill=False)
    rows = list(reader.iter_rows())
    assert [r.id for r in rows] == list(range(1, GOOD_PAIRS + len(bad) + 2))
    unreadable = {r.id: r.reason for r in rows if isinstance(r, UnreadableRow)}
    assert set(unreadable) == set(bad)
    for row_id, name in bad.items():
        assert unreadable[row_id].startswith(BAD_ROWS[name][2])
        _assert_no_content(unreadable[row_id])
    pairs = list(reader.iter_pairs())
    assert len(pairs) == GOOD_PAIRS + 1 and pairs[-1].id == good_after
    assert reader.export_jsonl(tmp_path / "out.jsonl") == GOOD_PAIRS + 1
    summary = record(store, tmp_path / "corpus.jsonl")
    assert summary.written + summary.skipped == GOOD_PAIRS + 1
    assert summary.unreadable == len(bad)


# -- the report -----------------------------------------------------------------------------


def test_the_report_lists_every_bad_row_and_cannot_say_go(store: Path) -> None:
    baseline = _report(store)
    assert baseline.decision is Decision.GO  # the good pairs alone
    bad = _insert_bad_rows(store, list(BAD_ROWS))
    report = _report(store)

    # The good pairs are compared exactly as before; the bad rows are in no gate.
    assert report.context.pairs == GOOD_PAIRS
    assert report.tables == baseline.tables
    assert report.latency == baseline.latency
    assert report.gates[1:] == baseline.gates[1:]

    # Every bad row counted and listed with its id and reason.
    found = report.uncomparable
    assert (found.rows, found.of_rows) == (len(bad), GOOD_PAIRS + len(bad))
    listed = dict(found.listed)
    assert set(listed) == set(bad)
    for row_id, name in bad.items():
        assert listed[row_id].startswith(BAD_ROWS[name][2]), (name, listed[row_id])

    # More than 1 % of the rows: the captures-readable gate cannot pass, nor can the report.
    gate = report.gates[0]
    assert (gate.name, gate.status, gate.samples) == (
        READABLE_GATE,
        Status.INCONCLUSIVE,
        GOOD_PAIRS + len(bad),
    )
    assert report.decision is Decision.INCONCLUSIVE and report.decision.exit_code == 2

    markdown, html, data = render_markdown(report), render_html(report), render_json(report)
    head = markdown.split("## Gates", 1)[0]
    assert f"{len(bad)} uncomparable rows" in head and READABLE_GATE in head
    for text in (markdown, html):
        assert "Uncomparable captures" in text
        for row_id in bad:
            assert f"| {row_id} |" in text or f'<td class="num">{row_id}</td>' in text
    parsed = json.loads(data)
    assert parsed["summary"]["uncomparable_rows"] == len(bad)
    assert {r["id"]: r["reason"] for r in parsed["uncomparable"]["listed"]} == listed
    for text in (markdown, html, data):
        _assert_no_content(text)


def test_a_few_bad_rows_are_listed_without_blocking_go(store: Path) -> None:
    bad = _insert_bad_rows(store, ["NaN", "garbage SSE event"])  # 2 of 282 rows: 0.7 %
    report = _report(store)
    assert report.gates[0].status is Status.PASS
    assert report.decision is Decision.GO
    assert dict(report.uncomparable.listed).keys() == bad.keys()
    head = render_markdown(report).split("## Gates", 1)[0]
    assert "2 rows could not be compared" in head  # said on the first screen all the same


def test_harness_report_cli_on_a_store_with_bad_rows(store: Path, tmp_path: Path) -> None:
    bad = _insert_bad_rows(store, list(BAD_ROWS))
    harness_yaml = tmp_path / "harness.yaml"
    harness_yaml.write_text("{}\n", encoding="utf-8")  # the defaults
    config = tmp_path / "config.yaml"
    config.write_text("model_list: []\n", encoding="utf-8")
    out = tmp_path / "reports"
    env = {**os.environ, **LITELLM_OFFLINE_ENV, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "report",
            "--store",
            str(store),
            "--out",
            str(out),
            "--harness-config",
            str(harness_yaml),
            "--config",
            str(config),
            "--workers",
            "2",  # the rows folded in two processes, the uncomparable ones merged in order
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr  # INCONCLUSIVE, not a traceback
    assert done.stdout.startswith("Cutover readiness: INCONCLUSIVE")
    assert f"{len(bad)} rows could not be compared" in done.stdout
    assert "Traceback" not in done.stderr
    files = {
        n: (out / "latest" / n).read_text(encoding="utf-8")
        for n in ("report.md", "report.html", "report.json")
    }
    data = json.loads(files["report.json"])
    assert data["decision"] == "INCONCLUSIVE"
    assert [r["id"] for r in data["uncomparable"]["listed"]] == sorted(bad)
    assert (
        data["gates"][0]["name"] == READABLE_GATE and data["gates"][0]["status"] == "INCONCLUSIVE"
    )
    for text in (*files.values(), done.stdout, done.stderr):
        _assert_no_content(text)


# -- any pair dict --------------------------------------------------------------------------
# Well-typed pairs with arbitrary content where the data model takes any JSON (bodies,
# stream events, upstream calls), shaped like the APIs often enough to reach deep into the
# assemblers and the differ; half of them then get one field replaced or dropped.

_KEYS = st.sampled_from(
    [
        "choices",
        "delta",
        "message",
        "content",
        "tool_calls",
        "function",
        "name",
        "arguments",
        "index",
        "usage",
        "type",
        "error",
        "id",
        "model",
        "data",
        "text",
        "input",
        "partial_json",
        "content_block",
        "finish_reason",
        "stop_reason",
        "headers",
        "body",
        "seq",
        "time",
        "duration_ms",
    ]
) | st.text(max_size=6)
_BEYOND_FLOATS = st.sampled_from([10**400, -(10**400)])
_SCALARS = (
    st.none() | st.booleans() | st.integers() | _BEYOND_FLOATS | st.floats() | st.text(max_size=12)
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=12,
)
_TOOL_CALL = st.fixed_dictionaries(
    {},
    optional={
        "index": _JSON,
        "id": _JSON,
        "function": st.fixed_dictionaries(
            {}, optional={"name": _JSON, "arguments": _JSON.map(json.dumps) | _JSON}
        )
        | _JSON,
    },
)
_CHOICE = st.fixed_dictionaries(
    {},
    optional={
        "index": st.integers(0, 2) | _JSON,
        "message": st.fixed_dictionaries(
            {}, optional={"content": _JSON, "tool_calls": st.lists(_TOOL_CALL, max_size=2)}
        )
        | _JSON,
        "delta": st.fixed_dictionaries(
            {}, optional={"content": _JSON, "tool_calls": st.lists(_TOOL_CALL, max_size=2)}
        )
        | _JSON,
        "finish_reason": _JSON,
    },
)
_BLOCK_EVENT = st.fixed_dictionaries(
    {"type": st.sampled_from(["message_start", "content_block_start", "content_block_delta"])},
    optional={"index": _JSON, "delta": _JSON, "content_block": _JSON, "message": _JSON},
)
_BODY = (
    _JSON
    | st.fixed_dictionaries({"choices": st.lists(_CHOICE, max_size=2)}, optional={"usage": _JSON})
    | st.fixed_dictionaries({"content": st.lists(_JSON, max_size=3), "type": st.just("message")})
    | st.fixed_dictionaries({"data": st.lists(_JSON, max_size=3)})
)
_EVENTS = st.lists(
    st.builds(
        dict,
        data=(_BODY | _BLOCK_EVENT).map(json.dumps) | st.text(max_size=12) | st.just("[DONE]"),
        event=st.none() | st.sampled_from(["message_start", "content_block_delta", "error"]),
        offset_ms=st.floats(0, 1e4),
    ),
    max_size=5,
)
_TIMING = st.none() | st.floats(0, 1e5)


def _observation(target: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "target": st.just(target),
            "status": st.none() | st.integers(100, 599),
            "headers": st.dictionaries(
                st.sampled_from(["content-type", "x"]), st.text(max_size=20), max_size=2
            ),
            "body": _BODY,
            "events": st.none() | _EVENTS,
            "time_to_headers_ms": _TIMING,
            "ttft_ms": _TIMING,
            "total_ms": _TIMING,
            "error": st.none() | st.text(max_size=8),
            "truncated": st.booleans(),
        }
    )


_REQUEST = st.fixed_dictionaries(
    {
        "request_id": st.text(max_size=8),
        "received_at": st.floats(0, 2e9),
        "method": st.just("POST"),
        "path": st.just("/v1/x"),
        "endpoint": st.sampled_from(["chat", "messages", "count_tokens", "models", "health", "x"]),
        "model": st.none() | st.text(max_size=8),
        "stream": st.booleans(),
        "user_id": st.none() | st.text(max_size=8),
        "conversation_id": st.none(),
        "client_family": st.sampled_from(["claude-code", "curl", "other"]),
        "headers": st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
        "body": _JSON,
    }
)
_WELL_TYPED = st.fixed_dictionaries(
    {
        "request": _REQUEST,
        "primary": _observation("sdk"),
        "shadow": st.none() | _observation("legacy"),
        "shadow_repeat": st.none() | _observation("legacy"),
        "upstream": st.dictionaries(
            st.sampled_from(["sdk", "legacy"]),
            st.lists(st.dictionaries(_KEYS, _JSON, max_size=5), max_size=3),
        ),
        "mirror_outcome": st.just("mirrored"),
    }
)
_FIELDS = [
    *((None, k) for k in ("request", "primary", "shadow", "upstream", "mirror_outcome")),
    *(("request", k) for k in ("request_id", "received_at", "endpoint", "stream", "headers")),
    *(
        (side, k)
        for side in ("primary", "shadow")
        for k in ("target", "status", "headers", "events", "total_ms", "truncated")
    ),
]


@st.composite
def pair_dicts(draw: st.DrawFn) -> dict[str, Any]:
    data = draw(_WELL_TYPED)
    if draw(st.booleans()):
        section, key = draw(st.sampled_from(_FIELDS))
        where = data if section is None else data.get(section)
        if isinstance(where, dict):
            if draw(st.booleans()):
                where.pop(key, None)
            else:
                where[key] = draw(_JSON)
    return data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pair_dicts())
def test_any_pair_dict_is_compared_or_reported_uncomparable(data: dict[str, Any]) -> None:
    collector = EvidenceCollector(Comparator(), RUN)
    try:
        row: StoredPair | UnreadableRow = StoredPair(7, pair_from_dict(data))
    except MalformedPair as exc:  # the one exception reading may raise, with a reason
        row = UnreadableRow(7, str(exc))
    collector.add_row(row)  # never raises
    evidence = collector.evidence
    assert (evidence.pairs, evidence.uncomparable.rows) in ((1, 0), (0, 1))
    if evidence.uncomparable.rows:  # counted whole or not at all
        assert evidence.uncomparable.listed[0][0] == 7
        assert not evidence.diffs and not evidence.latency and not evidence.primaries
    report = build_report(evidence, HarnessSettings())
    for render in (render_markdown, render_html, render_json):
        assert render(report)
