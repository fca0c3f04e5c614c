from __future__ import annotations

from harness.shadow.breaker import CircuitBreaker
from harness.shadow.sampling import SamplingPolicy, endpoint_of, percent_bucket


def test_only_stateless_endpoints_are_mirrored() -> None:
    assert endpoint_of("POST", "/v1/chat/completions") == "chat"
    assert endpoint_of("POST", "/v1/messages") == "messages"
    assert endpoint_of("POST", "/v1/messages/count_tokens") == "count_tokens"
    assert endpoint_of("GET", "/v1/models") == "models"
    assert endpoint_of("GET", "/health") is None
    assert endpoint_of("POST", "/v1/files") is None
    assert endpoint_of("GET", "/v1/chat/completions") is None


def test_sampling_is_consistent_per_key_and_near_the_rate() -> None:
    policy = SamplingPolicy(rate=30)
    keys = [f"user-{i}" for i in range(2000)]
    first = [policy.decide("chat", "m", k) is None for k in keys]
    again = [policy.decide("messages", "m", k) is None for k in keys]
    assert first == again  # a conversation is mirrored whole or not at all
    assert 0.25 < sum(first) / len(keys) < 0.35
    assert all(SamplingPolicy(rate=100).decide("chat", None, k) is None for k in keys)
    assert not any(SamplingPolicy(rate=0).decide("chat", None, k) is None for k in keys)


def test_filters() -> None:
    policy = SamplingPolicy(endpoints=("messages",), models=("claude-sonnet-4.5",))
    assert policy.decide("chat", "claude-sonnet-4.5", "k") == "skipped:endpoint"
    assert policy.decide("messages", "gpt-4o", "k") == "skipped:model"
    assert policy.decide("messages", "claude-sonnet-4.5", "k") is None


def test_percent_bucket_range() -> None:
    assert all(0 <= percent_bucket(str(i)) < 100 for i in range(500))


def test_noise_probe_rate() -> None:
    policy = SamplingPolicy(aa_rate=10)
    probes = sum(policy.is_noise_probe(f"shd_{i}") for i in range(5000))
    assert 400 < probes < 600


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_probes_and_closes() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=3, cooldown=10, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state == "closed"
    breaker.record_failure()
    assert breaker.state == "open" and not breaker.allow()
    clock.now = 9.9
    assert not breaker.allow()
    clock.now = 10.0
    assert breaker.allow()  # one probe
    assert breaker.state == "half-open" and not breaker.allow()
    breaker.record_failure()  # the probe failed: open for another cooldown
    assert breaker.state == "open" and not breaker.allow()
    clock.now = 20.0
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == "closed" and breaker.allow()
    assert breaker.opened_count == 2


def test_success_resets_the_failure_count() -> None:
    breaker = CircuitBreaker(failures=2, cooldown=1, clock=Clock())
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state == "closed"
