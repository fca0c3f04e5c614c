"""Assemble and run shadow mode: the primary app wrapped by the mirror, plus the store.

With ``shadow.mirror_process`` (the default) the store and the mirror's work live in the
mirror sidecar (:mod:`harness.shadow.sidecar`); otherwise both run in this process.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp

from harness.loopback import LoopbackServer, free_port
from harness.runs.identity import config_identity, proxy_versions
from harness.settings import HarnessSettings, replay_address, validate_upstream_mode
from harness.shadow.canary_route import CanaryOptions, CanaryRun, build_canary
from harness.shadow.dispatch import Dispatch, LocalDispatch
from harness.shadow.forwarder import Forwarder
from harness.shadow.metrics import ShadowCollector
from harness.shadow.mirror import ShadowMirror
from harness.shadow.mirror_stack import (
    derive_relay_config,
    derive_replay_config,
    relay_bases,
    start_mirror_stack,
)
from harness.shadow.recording_relay import RecordingRelay
from harness.shadow.replay_upstream import TWIN_PREFIX
from harness.shadow.sidecar import (
    SidecarDispatch,
    SidecarSpec,
    open_engine,
    record_mirror_counters,
)
from harness.shadow.targets import MirrorTarget, MirrorTargets
from harness.shadow.upstream_tap import UpstreamTap
from harness.stack import Stack
from harness.store.capture_store import CaptureStore
from harness.store.dialect import describe_store, files_dir, open_dialect
from memory_proxy.config import ProxyConfig, load_config
from memory_proxy.connection_limits import serve_with_limits
from memory_proxy.errors import ConfigError
from memory_proxy.metrics import MetricsRoute

__all__ = ["ShadowRun", "build_shadow", "open_shadow_run", "replay_url", "serve_shadow"]

logger = logging.getLogger("harness.shadow")


@dataclass
class ShadowRun:
    """What a shadow-mode process holds: the app to serve, and what to close after it.

    ``app`` is what the server serves: ``mirror``, or ``mirror`` behind ``GET /metrics``.
    """

    app: ASGIApp
    mirror: ShadowMirror
    store: CaptureStore | None = None  # in this process; else the sidecar holds it
    sidecar: SidecarDispatch | None = None
    internal: list[LoopbackServer] = field(default_factory=list)
    settings: HarnessSettings | None = None  # as run: the replay port chosen
    # Replay with a legacy primary: the config its LiteLLM server must run on (providers
    # through the recording relay), written beside the store.
    relay_config: Path | None = None
    run_id: int | None = None  # the run this start opened (its pairs and counters)

    def close(self) -> None:
        """After the server stopped: every captured pair is in the store when this returns,
        and the run (if any) has its counters and its end."""
        for server in self.internal:
            server.stop()
        if self.sidecar is not None:
            code = self.sidecar.wait()
            if code:
                logger.error("mirror sidecar exited with %s", code)
        if self.store is not None:
            self.store.close()
            logger.info("store closed: %s", self.store.health())
            dispatch = self.mirror.dispatch
            if isinstance(dispatch, LocalDispatch) and self.sidecar is None:
                record_mirror_counters(self.run_id, dispatch.engine, self.store)
        self._end_run()

    def _end_run(self) -> None:
        if self.run_id is None or self.settings is None:
            return
        tap = {"seen": self.mirror.seen, "skipped": dict(self.mirror.dispatch.skipped)}
        try:
            with CaptureStore(self.settings.capture.store, spill=False) as store:
                store.record_run_counters(self.run_id, "tap", tap)
                store.end_run(self.run_id)
        except Exception:  # noqa: BLE001 - the pairs are written; only the counters are lost
            logger.exception("could not close run %s", self.run_id)
        else:
            logger.info("run %s ended: %s", self.run_id, tap)


def build_shadow(
    config: ProxyConfig, settings: HarnessSettings, *, run_id: int | None = None
) -> ShadowRun:
    """The primary serves clients; the other proxy is the shadow.

    ``primary: sdk``: the SDK proxy app runs in this process and the mirror sends each
    request to ``mirror_to`` (the legacy proxy). ``primary: legacy``: clients are
    forwarded to ``mirror_to`` and the SDK proxy, started in this process on a private
    loopback port, is the shadow; under replay its providers point at the replay upstream
    and the legacy stack's provider calls are recorded by the recording relay (the legacy
    stack's LiteLLM server must run on ``ShadowRun.relay_config``). A/A noise probes go
    to the legacy proxy; none with a legacy primary under replay (they would reach the
    provider).
    ``run_id``: the run its pairs and counters go to (:func:`open_shadow_run`).
    """
    from memory_proxy.app import create_app

    settings = _fix_replay_port(settings)
    shadow = settings.shadow
    validate_upstream_mode(shadow, "shadow settings")
    replay = shadow.upstream == "replay"
    internal: list[LoopbackServer] = []
    # ``mirror_to`` is the legacy proxy whichever side answers clients.
    legacy = MirrorTarget("legacy", shadow.mirror_to)
    primary: Any
    relay_config: Path | None = None
    if shadow.primary == "sdk":
        # Replay answers the mirror with the provider calls the SDK proxy made: tap them.
        tap = UpstreamTap(settings.capture.max_body_bytes) if replay else None
        primary = create_app(config, upstream_observer=tap)
        # The SDK build timed beside the mirror (replay only: it is answered by replay).
        twin = MirrorTarget("sdk", shadow.twin_to) if replay and shadow.twin_to else None
        targets = MirrorTargets(primary="sdk", shadow=legacy, repeat=legacy, twin=twin)
    else:
        mirror_config, relay = config, None
        if replay:
            relay, relay_config, mirror_config = _relayed(config, settings, internal)
        sdk = LoopbackServer(create_app(mirror_config)).start()
        internal.append(sdk)
        primary = Forwarder(legacy.url, timeout=config.litellm.request_timeout, relay=relay)
        # A/A probes go to the legacy proxy: here the primary's own stack, whose provider
        # calls are real. Under replay nothing may reach the provider twice: no probes.
        targets = MirrorTargets(
            primary="legacy",
            shadow=MirrorTarget("sdk", sdk.url),
            repeat=None if replay else legacy,
        )
    spec = SidecarSpec(
        settings=settings,
        secrets=config.secrets,
        user_id_mappings=config.user_id_mappings,
        targets=targets,
        nice=shadow.mirror_nice,
        idle=shadow.mirror_idle,
        run_id=run_id,
    )
    dispatch: Dispatch
    store = sidecar = None
    if shadow.mirror_process:
        dispatch = sidecar = SidecarDispatch(spec)
    else:
        engine, store = open_engine(spec)
        dispatch = LocalDispatch(engine)
    mirror = ShadowMirror(primary, settings=settings, dispatch=dispatch, tap_upstream=replay)
    app = _with_metrics(mirror, primary, config)
    return ShadowRun(
        app=app,
        mirror=mirror,
        store=store,
        sidecar=sidecar,
        internal=internal,
        settings=settings,
        relay_config=relay_config,
        run_id=run_id,
    )


def _relayed(
    config: ProxyConfig, settings: HarnessSettings, internal: list[LoopbackServer]
) -> tuple[RecordingRelay, Path, ProxyConfig]:
    """Replay with the legacy proxy as primary: start the recording relay, write the
    config the legacy stack's LiteLLM server must run on to go through it, and derive
    the in-process SDK proxy's (the mirror: its providers answered by replay)."""
    run_dir = files_dir(settings.capture.store) / datetime.now(UTC).strftime(
        "shadow-relay-%Y%m%dT%H%M%S%fZ"
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    relay = RecordingRelay(
        relay_bases(config.path),
        max_body_bytes=settings.capture.max_body_bytes,
        timeout=config.litellm.request_timeout,
    )
    host, port = replay_address(settings.shadow.relay_listen)
    server = LoopbackServer(relay, port, host=host).start()
    internal.append(server)
    relay_config = derive_relay_config(config.path, server.url, run_dir / "legacy-relay.yaml")
    logger.warning(
        "recording relay on %s: run the legacy stack's LiteLLM server with %s (its provider "
        "calls then go through the relay, which records them for replay)",
        server.url,
        relay_config,
    )
    url = replay_url(settings)
    assert url is not None
    mirror = derive_replay_config(config.path, url, run_dir / "sdk-mirror.yaml")
    return relay, relay_config, load_config(mirror)


def _with_metrics(mirror: ShadowMirror, primary: Any, config: ProxyConfig) -> ASGIApp:
    """The mirror's metrics on the serving process's one ``GET /metrics``.

    An SDK primary already serves ``/metrics`` (its own request metrics): the mirror's
    join its registry. A forwarded legacy primary gets a ``/metrics`` of the mirror's
    alone; the legacy proxy serves its own request metrics.
    """
    if not config.options.metrics:
        return mirror
    collector = ShadowCollector(mirror.stats)
    proxy_metrics = getattr(getattr(primary, "state", None), "metrics", None)
    if proxy_metrics is not None:
        proxy_metrics.register(collector)
        return mirror
    registry = CollectorRegistry()
    registry.register(collector)
    return MetricsRoute(mirror, registry=registry, master_key=config.general.master_key)


def _fix_replay_port(settings: HarnessSettings) -> HarnessSettings:
    """Replay mode on "any port": choose it now, so the mirror side can be pointed at it
    before the replay upstream (in the sidecar) starts."""
    shadow = settings.shadow
    if shadow.upstream != "replay":
        return settings
    host, port = replay_address(shadow.replay_listen)
    if port:
        return settings
    return settings.with_overrides("shadow", replay_listen=f"{host}:{free_port()}")


def replay_url(settings: HarnessSettings) -> str | None:
    """Where the mirror side's providers must point in replay mode (None in live mode)."""
    if settings.shadow.upstream != "replay":
        return None
    host, port = replay_address(settings.shadow.replay_listen)
    return f"http://{host}:{port}"


def open_shadow_run(config: ProxyConfig, settings: HarnessSettings) -> int:
    """Open this start's run in the store: both proxies' versions, the config files'
    hashes, replay or live, who answers clients; its id."""
    configs = config_identity(config=config.path, harness=settings.path)
    with CaptureStore(settings.capture.store, spill=False) as store:
        return store.open_run(
            mode=settings.shadow.upstream,
            primary_role=settings.shadow.primary,
            versions=proxy_versions(),
            configs=configs,
        )


def serve_shadow(
    config: ProxyConfig,
    settings: HarnessSettings,
    *,
    host: str,
    port: int,
    canary: CanaryOptions | None = None,
) -> int:
    """``canary``: serve the canary front door (:mod:`harness.shadow.canary_route`)."""
    # A team store that cannot be reached fails the start here, in one line, before any
    # process is started (not in the sidecar a moment later).
    open_dialect(settings.capture.store)
    with contextlib.ExitStack() as cleanup:
        if canary is not None:
            settings = settings.with_overrides("shadow", primary="sdk")
            if settings.shadow.upstream == "live" and not settings.shadow.mirror_to:
                settings = settings.with_overrides("shadow", mirror_to=canary.legacy_url)
        if not settings.shadow.mirror_to:
            settings = _start_mirror(config, settings, cleanup)
        if canary is None:
            settings = _start_twin(config, settings, cleanup)
        return _serve(config, settings, host, port, canary)


def _start_mirror(
    config: ProxyConfig, settings: HarnessSettings, cleanup: contextlib.ExitStack
) -> HarnessSettings:
    """No ``mirror_to``: start the legacy stack pointed at the replay upstream (replay
    mode only: in live mode the user's own legacy stack is the mirror)."""
    if settings.shadow.upstream != "replay" or settings.shadow.primary != "sdk":
        raise ConfigError(
            "shadow.mirror_to: give the other proxy's URL (--mirror-to); only replay mode "
            "with the SDK proxy as primary starts the legacy stack itself"
        )
    settings = _fix_replay_port(settings)
    url = replay_url(settings)
    assert url is not None
    stack = cleanup.enter_context(Stack(_run_dir(settings, "mirror")))
    logger.warning("starting the mirror's legacy stack (logs in %s)", stack.run_dir)
    mirror = start_mirror_stack(stack, config.path, url)
    logger.warning("mirror: legacy proxy %s, its providers answered by replay at %s", mirror, url)
    return settings.with_overrides("shadow", mirror_to=mirror)


def _start_twin(
    config: ProxyConfig, settings: HarnessSettings, cleanup: contextlib.ExitStack
) -> HarnessSettings:
    """Replay mode, SDK primary: start the latency twin, the SDK proxy from the same
    config through a derived copy whose provider base URLs point at the replay upstream's
    twin book (:mod:`harness.shadow.engine` says why both proxies are timed this way)."""
    shadow = settings.shadow
    if (
        shadow.upstream != "replay"
        or shadow.primary != "sdk"
        or not shadow.latency_twin
        or shadow.twin_to
    ):
        return settings
    settings = _fix_replay_port(settings)
    url = replay_url(settings)
    assert url is not None
    stack = cleanup.enter_context(Stack(_run_dir(settings, "twin")))
    derived = derive_replay_config(config.path, url + TWIN_PREFIX, stack.run_dir / "twin.yaml")
    twin = stack.sdk_proxy(derived)
    logger.warning("latency twin: SDK proxy %s, its providers answered by replay", twin.url)
    return settings.with_overrides("shadow", twin_to=twin.url)


def _run_dir(settings: HarnessSettings, part: str) -> Path:
    """Where a part shadow mode starts keeps its logs: beside the store (reports/)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return files_dir(settings.capture.store) / f"shadow-{part}-{stamp}"


def _serve(
    config: ProxyConfig,
    settings: HarnessSettings,
    host: str,
    port: int,
    canary: CanaryOptions | None = None,
) -> int:
    run: ShadowRun | CanaryRun
    run_id: int | None = None  # the canary front door opens no shadow run
    if canary is not None:
        run = build_canary(config, settings, legacy_url=canary.legacy_url, store=canary.store)
    else:
        run_id = open_shadow_run(config, settings)
        run = build_shadow(config, settings, run_id=run_id)
    assert run.settings is not None
    settings = run.settings
    logger.info(
        "shadow mode, run %s: primary=%s on %s:%d, mirroring to %s, upstream %s, store %s",
        run_id,
        settings.shadow.primary,
        host,
        port,
        settings.shadow.mirror_to,
        settings.shadow.upstream,
        describe_store(settings.capture.store),
    )
    url = replay_url(settings)
    if url is not None:
        # The mirror proxy's provider base URLs must point here (keep their paths).
        logger.warning("replay upstream: %s (point the mirror side's api_base here)", url)
    else:
        shadow = settings.shadow
        logger.warning(
            "shadow.upstream: live: the mirror side calls the provider too and is billed; "
            "its memory user and conversation ids get the suffix %r; budget per UTC day: "
            "%s requests, %s tokens",
            shadow.live_suffix,
            shadow.live_budget_requests or "no cap on",
            shadow.live_budget_tokens or "no cap on",
        )
    # uvicorn re-raises the SIGTERM it shut down for once it returns: the handler it puts
    # back (harness.cli's) unwinds, so the finally below lets the sidecar finish writing.
    try:
        # The same connection limits as `memory-proxy serve`: slow clients get a 408.
        serve_with_limits(run.app, config.options, host=host, port=port, log_level="warning")
    finally:
        run.close()
    return 0
