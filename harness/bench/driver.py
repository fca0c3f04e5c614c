"""The parent's side of the load generator: one child process for a whole bench run."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from types import TracebackType

from harness.bench.loadgen import LoadOutcome, LoadSpec
from harness.errors import HarnessError

__all__ = ["LoadGenerator", "LoadGeneratorError"]


class LoadGeneratorError(HarnessError, RuntimeError):
    """The load generator process died or answered something unreadable."""


class LoadGenerator:
    """``python -m harness.bench.loadgen`` as a child; :meth:`run` sends one spec, waits."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> LoadGenerator:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "harness.bench.loadgen"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                bufsize=1,
            )
        return self

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def run(self, spec: LoadSpec) -> LoadOutcome:
        process = self._process
        if process is None or process.stdin is None or process.stdout is None:
            raise LoadGeneratorError("the load generator is not started")
        try:
            process.stdin.write(json.dumps({"op": "run", "spec": asdict(spec)}) + "\n")
            process.stdin.flush()
        except BrokenPipeError:
            raise LoadGeneratorError(self._died()) from None
        line = process.stdout.readline()
        if not line:
            raise LoadGeneratorError(self._died())
        try:
            return LoadOutcome.from_dict(json.loads(line))
        except (ValueError, TypeError) as exc:
            raise LoadGeneratorError(f"unreadable load generator answer: {line[:200]!r}") from exc

    def _died(self) -> str:
        code = self._process.poll() if self._process is not None else None
        return f"the load generator exited (code {code}); see {self.log_path}"

    def close(self) -> None:
        process = self._process
        if process is None:
            return
        self._process = None
        try:
            if process.stdin is not None:
                process.stdin.write(json.dumps({"op": "quit"}) + "\n")
                process.stdin.close()
            process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait(timeout=5)

    def __enter__(self) -> LoadGenerator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
