"""``harness demo`` (``make demo``): the whole migration, offline and with no keys.

A guided tour: it starts the sandbox provider (twice: one per proxy, so every upstream
call's sender is certain), the LiteLLM server and the legacy proxy (the "binary"
architecture), and the SDK proxy in shadow mode in front; replays the request corpus
through it while each request is mirrored to the legacy proxy; runs a short 50-user
criterion load against both proxies; writes the cutover-readiness report (the deliberate
differences show as regressions); applies the shipped accepted differences and reports
again; and, only on GO, cuts over, drills a rollback and cuts over again
(:mod:`.journey`), then shows a short gradual cutover (:mod:`harness.demo.canary_tour`):
a healthy canary that cuts over, and a seeded faulty SDK slice rolled back by itself. It
stops every process it started.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO, cast

import httpx

from harness.corpus import CORPUS_PATH, load_corpus
from harness.cutover.stack_control import find_running, stop_stack
from harness.cutover.switch import SwitchOptions, cutover, rollback
from harness.demo.canary_tour import canary_tour
from harness.demo.journey import ReportVerdict, cutover_drill, read_verdict
from harness.demo.traffic import health_checks_needed, replay_loops, send_health_checks, top_up
from harness.load.driver import LoadPlan, run_load
from harness.load.targets import LoadTarget
from harness.loopback import free_port
from harness.paths import ACCEPTED_DIFFERENCES, HARNESS_CONFIG
from harness.replay.sender import ReplayPlan, replay
from harness.report.output import latest_report, read_report_json
from harness.sandbox.config_file import write_sandbox_config
from harness.settings import load_harness_settings
from harness.shadow.metrics import live_summary
from harness.stack import Stack
from harness.store.capture_store import CaptureStore
from memory_proxy.config import load_config

__all__ = ["run_demo"]

# Calls each sandbox keeps: more than the load step sends it, so the shadow run's calls
# are still there when the upstream evidence is read after the load.
CAPTURE_LIMIT = "200000"
# Percent of the demo's health checks mirrored (harness.yaml's 10 % suits a monitor that
# polls all day; the demo has ~30 s of checks to give its health gate enough pairs).
DEMO_HEALTH_RATE = 100.0


def _say(text: str = "") -> None:
    print(text, flush=True)


# The journey's steps, in order: a step is added here and where it runs.
STEPS = (
    "Sandbox providers",
    "Legacy architecture, as the shadow's mirror",
    "SDK proxy in shadow mode (replay)",
    "Replay the corpus",
    "Load: the criterion",
    "Upstream evidence",
    "Stopping the shadow run's processes",
    "Cutover-readiness report",
    "Accepted differences",
    "Cutover, rollback drill, and back",
    "Gradual cutover (canary)",
)


def _step(title: str, why: str) -> None:
    _say(f"\n[{STEPS.index(title) + 1}/{len(STEPS)}] {title}")
    _say(f"      {why}")


def run_demo(
    reports: Path = Path("reports"),
    *,
    load_seconds: float = 15.0,
    users: int = 50,
    canary: bool = False,
) -> int:
    started = time.perf_counter()
    run_dir = (reports / "demo" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")).resolve()
    _say("memory-proxy demo: the migration from the LiteLLM-server proxy to the SDK proxy")
    _say(f"Everything runs on 127.0.0.1, offline. Logs and data: {run_dir}")
    with Stack(run_dir) as stack:
        _step(
            "Sandbox providers",
            "Stand-ins for Supermemory's router, Anthropic and OpenAI: "
            "deterministic replies, SSE, cookies, captures.",
        )
        sdk_sandbox = stack.sandbox("--capture-limit", CAPTURE_LIMIT, name="sdk-sandbox")
        legacy_sandbox = stack.sandbox("--capture-limit", CAPTURE_LIMIT, name="legacy-sandbox")
        _say(f"      the provider of the SDK proxy (and of shadow mode): {sdk_sandbox.url}")
        _say(f"      the provider of the legacy stack under load:        {legacy_sandbox.url}")
        sdk_config = write_sandbox_config(sdk_sandbox.url, run_dir / "sdk.yaml")
        legacy_config = write_sandbox_config(legacy_sandbox.url, run_dir / "legacy.yaml")
        config = load_config(sdk_config)
        key = config.general.master_key or ""

        _step(
            "Legacy architecture, as the shadow's mirror",
            "The LiteLLM server (the 'binary') and the legacy memory proxy forwarding to it, "
            "their provider URLs pointed at shadow mode's replay upstream: the mirror never "
            "reaches the provider.",
        )
        replay_port = free_port()
        replay_url = f"http://127.0.0.1:{replay_port}"
        mirror_config = write_sandbox_config(replay_url, run_dir / "mirror.yaml")
        mirror_llm = stack.litellm_server(mirror_config, name="mirror-litellm-server")
        mirror = stack.legacy_proxy(mirror_config, mirror_llm.url, name="mirror-legacy-proxy")
        _say(
            f"      LiteLLM server {mirror_llm.url} "
            f"(ready in {mirror_llm.startup_seconds or 0:.1f} s), legacy proxy {mirror.url} "
            f"({mirror.startup_seconds or 0:.1f} s), provider: {replay_url}"
        )

        _step(
            "SDK proxy in shadow mode (replay)",
            "Clients get the SDK proxy's answer; each request is mirrored to the legacy proxy, "
            "whose provider calls get the answers the provider gave the SDK proxy.",
        )
        store_path = run_dir / "shadow.db"
        shadow = stack.shadow(
            sdk_config,
            HARNESS_CONFIG,
            mirror.url,
            store_path,
            replay_listen=f"127.0.0.1:{replay_port}",
            health_rate=DEMO_HEALTH_RATE,
        )
        _say(
            f"      serving on {shadow.url} (ready in {shadow.startup_seconds or 0:.1f} s), "
            f"store {store_path}"
        )
        _say(f"      metrics: {shadow.url}/metrics (Prometheus; the master key as bearer token)")

        entries = load_corpus(CORPUS_PATH)
        harness_settings = load_harness_settings(HARNESS_CONFIG)
        min_samples = harness_settings.report.min_samples
        # p95 decides only from its own, higher minimum, and at that minimum its interval
        # is wide on a busy machine (/health at 56 samples: SDK - legacy p95 in [-9, +13]
        # ms against +8 allowed, INCONCLUSIVE): the thin slices get twice the minimum.
        p95_samples = 2 * max(min_samples, harness_settings.report.latency_p95_min_samples)
        loops = replay_loops(entries, min_samples)
        extra_entries, extra_loops = top_up(entries, loops, p95_samples)
        # /health is the one slice where the two proxies are about as fast (paired, on a
        # loaded host: p95 6.88 vs 6.84 ms; under the test suite's load the SDK side's p95
        # ran 0.0-0.4 ms above), so its gate decides on the interval's width: ~1.3 ms
        # allowed, and 221 pairs read +-1.25 ms, 881 pairs +-0.8 ms (INCONCLUSIVE at
        # [-0.2, +1.4]). 3,500 pairs halve that again. The checks stay a monitor's pace,
        # every one mirrored (--health-rate).
        health_pairs = 35 * p95_samples
        checks = health_checks_needed(health_pairs, DEMO_HEALTH_RATE)
        _step(
            "Replay the corpus",
            f"{len(entries)} recorded requests, {loops} times: both API formats, streams, "
            "tools, five client families, and 21 that must fail; enough of each kind for "
            f"every gate ({min_samples} samples at least). Then the {len(extra_entries)} "
            f"requests of the thinnest latency slices {extra_loops} times more, for p95 "
            f"({p95_samples} samples), and {checks} health checks, as a monitor polls "
            f"({DEMO_HEALTH_RATE:g} % are mirrored: --health-rate).",
        )
        summary = replay(
            ReplayPlan(entries, shadow.url, key, concurrency=4, loop=loops, progress=False)
        )
        for line in summary.format().splitlines():
            _say(f"      {line}")
        mismatches = len(summary.mismatches)
        if extra_entries:
            more = replay(
                ReplayPlan(
                    extra_entries, shadow.url, key, concurrency=4, loop=extra_loops, progress=False
                )
            )
            mismatches += len(more.mismatches)
            _say(
                f"      thin slices: {more.format().splitlines()[0]}; "
                f"mismatches: {len(more.mismatches)}"
            )
        # The health checks' mirrors are timed once the corpus's have drained: timed in
        # the middle of that backlog, a /health p95 (a few ms on a quiet caller) spread
        # over +-80 ms, and its gate could not decide.
        drained = _wait_for_mirrors(shadow.url, timeout=300.0)
        _say(f"      the corpus's mirrors done {drained:.1f} s later")
        healthy = send_health_checks(shadow.url, checks)
        _say(f"      health checks: {healthy} of {checks} answered 200")
        _wait_for_mirrors(shadow.url, timeout=300.0)

        _step(
            "Load: the criterion",
            f"The {users}-concurrent-request criterion: {users} Locust users at once for "
            f"{load_seconds:.0f} s against each proxy alone (a plain SDK proxy, then the "
            "legacy stack); RSS and CPU sampled every second.",
        )
        plain = stack.sdk_proxy(sdk_config)
        llm = stack.litellm_server(legacy_config)
        legacy = stack.legacy_proxy(legacy_config, llm.url)
        plan = LoadPlan(
            targets=(
                LoadTarget("sdk", plain.url, plain.pid),
                LoadTarget("legacy", legacy.url, legacy.pid),
            ),
            key=key,
            users=users,
            duration_s=load_seconds,
            out_dir=run_dir / "load",
            store=store_path,
            p95_ms=load_harness_settings(HARNESS_CONFIG).load.p95_ms,
        )
        load_report = run_load(plan, out=cast(TextIO, _Indented(sys.stdout)))

        _step(
            "Upstream evidence",
            "What each proxy really sent the provider, recorded with each pair (memory "
            "headers, cookies, retries): the SDK proxy's calls by the tap on its upstream "
            "session, the legacy stack's by the replay upstream.",
        )
        store = CaptureStore(store_path)
        store.flush()
        pairs = [stored.pair for stored in store.iter_pairs()]
        recorded = sum(1 for pair in pairs if pair.upstream.get("legacy"))
        _say(
            f"      {len(pairs)} captured pairs; the legacy stack's provider calls recorded "
            f"for {recorded}; the mirror sent the provider nothing"
        )
        store.close()
        scraped = httpx.get(
            shadow.url + "/metrics", headers={"authorization": f"Bearer {key}"}, timeout=10
        )
        scraped.raise_for_status()
        for line in live_summary(scraped.text):
            _say(f"      /metrics {line}")

        _step(
            "Stopping the shadow run's processes",
            "Shadow mode flushes its queue on the way down: no captured pair is lost.",
        )
        took = stack.stop()
        _say(f"      stopped in {took:.1f} s")

    _step(
        "Cutover-readiness report",
        "Gates from the migration plan, each with its evidence; GO, NO-GO or INCONCLUSIVE. "
        "The deliberate differences between the proxies show here as regressions.",
    )
    first_code = _report(store_path, reports, sdk_config)
    first = _verdict(reports)

    _step(
        "Accepted differences",
        f"The shipped {ACCEPTED_DIFFERENCES.name}: each deliberate difference with the "
        "design decision behind it (README: Accepted differences). The report again, "
        "compared to the first: what the rules took, and what is left.",
    )
    second_code = _report(store_path, reports, sdk_config, accept=ACCEPTED_DIFFERENCES)
    second = _verdict(reports)
    report_dir = latest_report(reports)

    _step(
        "Cutover, rollback drill, and back",
        "Only on GO: `harness cutover` restarts the stack through `memory-proxy up` on the "
        "SDK proxy (health and canary checked), `harness rollback` drills the way back, "
        "and the cutover again.",
    )
    if second.go and report_dir is not None:
        drilled = _cutover_drill(second, report_dir, run_dir / "cutover")
        if canary:
            _step(
                "Gradual cutover (canary)",
                "After GO, users move to the SDK proxy a slice at a time; then a seeded "
                "faulty SDK slice is rolled back by itself.",
            )
            canary_tour(run_dir)
    else:
        drilled = cutover_drill(second, _NoSwitch(), report_dir or reports, _indented)
    _say(
        f"\nDemo finished in {time.perf_counter() - started:.0f} s "
        f"(replay mismatches: {mismatches}, load exit {load_report.exit_code}, "
        f"first report exit {first_code} ({first.decision}), with accepted differences "
        f"exit {second_code} ({second.decision}) (exit codes: 0 GO, 1 NO-GO, 2 INCONCLUSIVE); "
        f"cutover drill {'done' if drilled else 'not run'})."
    )
    return 0


def _indented(line: str) -> None:
    _say(f"      {line}")


def _report(store: Path, reports: Path, config: Path, accept: Path | None = None) -> int:
    from harness.report import cli as report_cli

    return report_cli.run(
        argparse.Namespace(
            store=str(store),
            out=str(reports.resolve()),
            harness_config=str(HARNESS_CONFIG),
            config=str(config),
            workers=None,
            run=None,
            since=None,
            accept=[str(accept)] if accept else [],
            compare_to=None,
            junit=None,
            summary=None,
        )
    )


def _verdict(reports: Path) -> ReportVerdict:
    found = latest_report(reports.resolve())
    if found is None:
        return ReportVerdict("INCONCLUSIVE")
    return read_verdict(read_report_json(found))


class _NoSwitch:
    """The switch when the verdict is not GO: the journey must not reach it."""

    def cutover(self, report: Path) -> int:
        raise AssertionError("cutover without a GO report")

    def rollback(self) -> int:
        raise AssertionError("rollback drill without a cutover")


@dataclass(frozen=True)
class _StackSwitch:
    options: SwitchOptions

    def cutover(self, report: Path) -> int:
        return cutover(self.options, report)

    def rollback(self) -> int:
        return rollback(self.options)


def _cutover_drill(verdict: ReportVerdict, report: Path, folder: Path) -> bool:
    """The drill on a stack of its own: a sandbox, and `memory-proxy up` on its config
    (legacy first, as before the migration); every process stopped at the end."""
    with Stack(folder) as stack:
        sandbox = stack.sandbox(name="cutover-sandbox")
        options = SwitchOptions(
            config=write_sandbox_config(sandbox.url, folder / "config.yaml"),
            run_root=folder / "runs",
            records=folder / "records",
            ports={"sdk": free_port(), "litellm": free_port()},
        )
        try:
            _indented("the legacy stack starts, as before the migration")
            if rollback(options) != 0:
                _indented("the legacy stack did not start: no drill")
                return False
            return cutover_drill(verdict, _StackSwitch(options), report, _indented)
        finally:
            running = find_running(options.run_root)
            if running is not None:
                stop_stack(running)


def _wait_for_mirrors(url: str, timeout: float = 60.0) -> float:
    """Mirrors finish after the answers; wait until the queue is empty (at most
    ``timeout``). The seconds it took."""
    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        stats = httpx.get(url + "/_shadow/stats", timeout=5).json()
        if stats["in_flight"] == 0 and stats["queued"] <= (
            stats["completed"] + stats["worker_errors"] + stats["store_rejected"]
        ):
            break
        time.sleep(0.2)
    return time.monotonic() - started


class _Indented:
    """A text stream that indents what the load driver prints, to keep the tour readable."""

    def __init__(self, stream: object) -> None:
        self._stream = stream
        self._start = True

    def write(self, text: str) -> int:
        out = []
        for char in text:
            if self._start and char != "\n":
                out.append("      ")
            out.append(char)
            self._start = char == "\n"
        return int(self._stream.write("".join(out)))  # type: ignore[attr-defined]

    def flush(self) -> None:
        self._stream.flush()  # type: ignore[attr-defined]
