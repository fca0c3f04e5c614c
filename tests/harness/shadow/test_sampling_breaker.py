from __future__ import annotations

from harness.shadow.breaker import CircuitBreaker
from harness.shadow.canary_route import on_sdk
from harness.shadow.sampling import (
    EvenSample,
    RateCap,
    SamplingPolicy,
    endpoint_of,
    percent_bucket,
)


def test_only_stateless_endpoints_are_mirrored() -> None:
    assert endpoint_of("POST", "/v1/chat/completions") == "chat"
    assert endpoint_of("POST", "/v1/messages") == "messages"
    assert endpoint_of("POST", "/v1/messages/count_tokens") == "count_tokens"
    assert endpoint_of("GET", "/v1/models") == "models"
    # Each proxy's own health check (no provider call), for the health gate.
    assert endpoint_of("GET", "/health") == "health"
    assert endpoint_of("GET", "/health/liveliness") is None
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


def test_the_sample_is_drawn_apart_from_the_canary_slices() -> None:
    """A 10 % sample mirrors about a tenth of each slice of a 25 % canary, not a tenth of
    all users taken wholly from the SDK's slice."""
    policy = SamplingPolicy(rate=10)
    users = [f"user-{i}" for i in range(4000)]
    for in_slice in (True, False):
        members = [u for u in users if on_sdk(u, 25) is in_slice]
        sampled = sum(policy.decide("chat", "m", u) is None for u in members)
        assert 0.07 < sampled / len(members) < 0.13, (in_slice, sampled, len(members))


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


def test_rate_cap_allows_a_burst_of_one_second_then_the_rate() -> None:
    cap = RateCap(5)
    # A burst of one second's worth at once, then nothing until tokens come back.
    assert [cap.take(0.0) for _ in range(7)] == [True] * 5 + [False] * 2
    assert cap.take(0.1) is False  # half a token
    assert cap.take(0.2) is True  # one token after 0.2 s at 5/s
    # Over ten seconds of steady offers at 50/s, about 5/s pass.
    passed = sum(cap.take(0.2 + i / 50) for i in range(1, 501))
    assert 49 <= passed <= 51


def test_rate_cap_below_one_per_second_and_off() -> None:
    slow = RateCap(0.5)
    assert slow.take(0.0) is True and slow.take(1.0) is False and slow.take(2.0) is True
    off = RateCap(0)
    assert all(off.take(0.0) for _ in range(1000))


def test_rate_cap_ignores_a_clock_that_steps_back() -> None:
    cap = RateCap(1)
    assert cap.take(10.0) is True
    assert cap.take(5.0) is False  # no tokens gained, none owed
    assert cap.take(6.0) is True


def test_health_checks_are_mirrored_evenly_at_their_own_rate() -> None:
    sample = EvenSample(10.0)
    taken = [i for i in range(1, 31) if sample.take()]
    assert taken == [1, 11, 21]
    assert [EvenSample(100.0).take() for _ in range(3)] == [True, True, True]
    assert not any(EvenSample(0.0).take() for _ in range(50))
