"""The demo's gradual cutover: a short canary that cuts over, then one that rolls back.

Run after the GO report (:func:`harness.demo.tour.run_demo` calls :func:`canary_tour`).
It starts its own parts: a sandbox per proxy (so a fault can be aimed at the SDK side
alone), the legacy stack (LiteLLM server + legacy proxy) that serves the users outside
the slice, and the canary front door (``harness shadow --canary``, live mirroring: every
provider here is a sandbox). A few clients send requests as 40 users throughout, while
``harness cutover --canary`` walks seconds-long steps:

1. healthy: 25 -> 50 -> 100 %, each window passing, ending with ``use_sdk: true`` (in a
   copy of the config, without a restart: the demo runs no supervisor);
2. seeded fault: the SDK's sandbox answers half its calls with a 500; the first window
   fails and every user goes back to legacy at once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from harness.cutover.config_edit import read_use_sdk
from harness.loopback import free_port
from harness.paths import HARNESS_CONFIG
from harness.sandbox.client import SandboxControl
from harness.sandbox.config_file import write_sandbox_config
from harness.shadow.canary_route import POLL_SECONDS
from harness.stack import Stack
from harness.store.canary_store import CanaryStore
from memory_proxy.config import load_config
from memory_proxy.litellm_env import LITELLM_OFFLINE_ENV
from memory_proxy.processes import ChildProcess

__all__ = ["canary_tour"]

USERS = 40
# A light, steady load: the latency gates compare the two proxies, not how a saturated
# 2-core demo machine shares its CPU between the front door and the legacy stack.
CLIENTS = 2
PAUSE_S = 0.05
STEPS = "25,50,100"
INTERVAL = "4s"


def _say(text: str = "") -> None:
    print(text, flush=True)


def canary_tour(run_dir: Path) -> int:
    """Both canary runs; 0 when the healthy one cut over and the faulty one rolled back."""
    run_dir = run_dir / "canary"
    run_dir.mkdir(parents=True, exist_ok=True)
    _say("\n[canary] Gradual cutover: users move to the SDK proxy a slice at a time")
    _say(
        "      The front door answers each user from the SDK proxy or legacy (by a hash of "
        "the memory user id), mirrors the other, and each step's window is judged by the "
        "report's gates."
    )
    with Stack(run_dir) as stack:
        sdk_sandbox = stack.sandbox(name="canary-sdk-sandbox")
        legacy_sandbox = stack.sandbox(name="canary-legacy-sandbox")
        sdk_config = write_sandbox_config(sdk_sandbox.url, run_dir / "sdk.yaml")
        legacy_config = write_sandbox_config(legacy_sandbox.url, run_dir / "legacy.yaml")
        store = run_dir / "canary.db"
        # The front door only needs the legacy proxy's URL, not the proxy: it starts while
        # the LiteLLM server does (both take seconds), and the stack stops it either way.
        legacy_port = free_port()
        front = _front_door(run_dir, sdk_config, f"http://127.0.0.1:{legacy_port}", store)
        stack.started.append(front)
        failed: list[BaseException] = []
        starting = threading.Thread(target=_start, args=(front, failed), daemon=True)
        starting.start()
        llm = stack.litellm_server(legacy_config, name="canary-litellm-server")
        legacy = stack.legacy_proxy(legacy_config, llm.url, legacy_port, name="canary-legacy-proxy")
        starting.join()
        if failed:
            raise failed[0]
        _say(f"      front door {front.url}; legacy proxy {legacy.url}; store {store}")
        key = load_config(sdk_config).general.master_key or ""

        _say(f"\n      Run 1: a healthy SDK side, steps {STEPS} %, {INTERVAL} each")
        healthy_config = _deployment_config(sdk_config, run_dir / "deploy-healthy.yaml")
        healthy = _canary_run(front.url, key, store, healthy_config, run_dir, warmup_s=6)
        _say(f"      -> exit {healthy}; use_sdk: {read_use_sdk(healthy_config.read_text())}")

        _say("\n      Run 2: seeded fault: the SDK's sandbox fails half its calls (500)")
        with SandboxControl(sdk_sandbox.url) as control:
            control.set_faults(error_rate_500=0.5)
        faulty_config = _deployment_config(sdk_config, run_dir / "deploy-faulty.yaml")
        faulty = _canary_run(front.url, key, store, faulty_config, run_dir)
        _say(
            f"      -> exit {faulty}; use_sdk: {read_use_sdk(faulty_config.read_text())}; "
            f"the front door now serves "
            f"{_serving_percent(front.url, CanaryStore(store).percent()):g} % from the SDK"
        )
    ok = healthy == 0 and faulty == 1
    _say(
        "      canary: "
        + ("cut over when healthy, rolled back by itself when not" if ok else "UNEXPECTED outcome")
    )
    return 0 if ok else 1


def _start(child: ChildProcess, failed: list[BaseException]) -> None:
    try:
        child.start()
    except BaseException as exc:  # noqa: BLE001 - raised again on the tour's own thread
        failed.append(exc)


def _front_door(run_dir: Path, config: Path, legacy_url: str, store: Path) -> ChildProcess:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "harness.cli",
        "shadow",
        "--config",
        str(config),
        "--harness-config",
        str(HARNESS_CONFIG),
        "--port",
        str(port),
        "--upstream",
        "live",
        "--mirror-to",
        legacy_url,
        "--store",
        str(store),
        "--canary",
        "--legacy-url",
        legacy_url,
    ]
    return ChildProcess(
        "canary front door",
        argv,
        port=port,
        log_path=run_dir / "front-door.log",
        env=LITELLM_OFFLINE_ENV,
        ready_timeout=180,
    )


def _deployment_config(source: Path, dest: Path) -> Path:
    """A copy the last step may switch (``use_sdk``): the demo's own files stay as they are."""
    dest.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    return dest


def _canary_run(
    url: str, key: str, store: Path, config: Path, run_dir: Path, warmup_s: float = 0.0
) -> int:
    """Traffic, then ``harness cutover --canary`` while it flows. ``warmup_s`` of traffic
    first (everyone on legacy, mirrored to the SDK): both proxies' first calls are slow,
    and a cold start is not what the latency gates are there to judge."""
    stop = threading.Event()
    clients = [
        threading.Thread(target=_client, args=(url, key, n, stop), daemon=True)
        for n in range(CLIENTS)
    ]
    for thread in clients:
        thread.start()
    stop.wait(warmup_s)
    try:
        process = subprocess.run(
            [
                sys.executable,
                "-m",
                "harness.cli",
                "cutover",
                "--canary",
                "--steps",
                STEPS,
                "--interval",
                INTERVAL,
                "--check-every",
                "0.5s",
                "--min-samples",
                "8",
                "--max-wait",
                "30s",
                "--store",
                str(store),
                "--config",
                str(config),
                "--harness-config",
                str(HARNESS_CONFIG),
                "--records",
                str(run_dir / "records"),
                "--no-restart",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **LITELLM_OFFLINE_ENV},
            timeout=180,
        )
    finally:
        stop.set()
        for thread in clients:
            thread.join(timeout=30)
    for line in process.stdout.splitlines():
        _say(f"      {line}")
    return process.returncode


def _client(url: str, key: str, worker: int, stop: threading.Event) -> None:
    """Requests as ``USERS`` users, round robin, half of them streams."""
    n = worker
    with httpx.Client(base_url=url, timeout=60) as client:
        while not stop.is_set():
            user = f"demo-user-{n % USERS}"
            body = {
                "model": "claude-sonnet-4.5",
                "max_tokens": 32,
                "stream": n % 2 == 0,
                "messages": [{"role": "user", "content": f"canary demo request {n}"}],
            }
            try:
                client.post(
                    "/v1/chat/completions",
                    json=body,
                    headers={"x-api-key": key, "x-memory-user-id": user},
                ).read()
            except httpx.HTTPError:
                pass  # the front door's answer is what counts, and the store has it
            n += CLIENTS
            stop.wait(PAUSE_S)


def _serving_percent(url: str, stored: float) -> float:
    """What the front door serves from the SDK, once it has read the store's ``stored``
    percent (it reads the store every POLL_SECONDS; asked at once after a rollback, it
    still said the step's percent). At most 5 s: then what it says."""
    deadline = time.monotonic() + 5.0
    while True:
        stats = httpx.get(url + "/_shadow/stats", timeout=10).json()
        serving = float(stats["canary"]["percent"])
        if serving == stored or time.monotonic() > deadline:
            return serving
        time.sleep(POLL_SECONDS / 5)
