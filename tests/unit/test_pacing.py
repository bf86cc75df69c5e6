"""The pacer spaces sends at the account's rate; the backoff slows it on throttling and loses nothing."""

from __future__ import annotations

import random

import pytest

from bloodbank.domain.mail import OutgoingEmail, SendRejected, SendThrottled
from bloodbank.errors import DependencyUnavailable
from bloodbank.fakes import RecordingMailer
from bloodbank.services.pacing import Backoff, Pacer, send_with_backoff


class FakeTime:
    """A monotonic clock that only moves when something sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def pacer(rate: float, time: FakeTime, **kwargs: float) -> Pacer:
    return Pacer(rate, time, time.sleep, **kwargs)


@pytest.mark.parametrize(
    ("rate", "sends", "elapsed"),
    [
        (1.0, 1, 0.0),  # the first send goes at once
        (1.0, 5, 4.0),
        (14.0, 15, 1.0),  # SES's default production rate: 14 gaps of 1/14 s
        (0.5, 3, 4.0),
        (200.0, 201, 1.0),
    ],
)
def test_sends_are_spaced_at_the_rate(rate: float, sends: int, elapsed: float) -> None:
    time = FakeTime()
    p = pacer(rate, time)
    start = time.now
    for _ in range(sends):
        p.wait()
    assert time.now - start == pytest.approx(elapsed)


def test_time_that_passed_is_not_waited_again_and_no_burst_builds_up() -> None:
    time = FakeTime()
    p = pacer(2.0, time)
    p.wait()
    time.now += 10  # idle for a while
    assert p.wait() == 0
    assert p.wait() == pytest.approx(0.5)  # idling did not bank tokens


@pytest.mark.parametrize(
    ("events", "rate"),
    [
        ("", 10.0),
        ("T", 5.0),
        ("TT", 2.5),
        ("TTTTTTTTTT", 0.1),  # floor: min_rate
        ("TS", 5.2),  # creep back: 2 % of the ceiling per success
        ("T" + "S" * 25, 10.0),  # never above the ceiling
    ],
)
def test_throttling_halves_the_rate_and_successes_creep_back(events: str, rate: float) -> None:
    p = pacer(10.0, FakeTime(), min_rate=0.1)
    for e in events:
        p.slow_down() if e == "T" else p.succeeded()
    assert p.rate == pytest.approx(rate)


def test_a_lower_account_rate_lowers_the_ceiling() -> None:
    p = pacer(14.0, FakeTime())
    p.set_ceiling(1.0)
    assert (p.ceiling, p.rate) == (1.0, 1.0)
    with pytest.raises(ValueError, match="positive"):
        p.set_ceiling(0)


def email(to: str = "ann@example.org") -> OutgoingEmail:
    return OutgoingEmail(to, "no-reply@bloodbank.example", "Hello", "<p>Hi</p>", "Hi")


@pytest.mark.parametrize(
    ("throttles", "attempts", "sent", "backoff_sleeps"),
    [
        (0, 6, True, 0),
        (1, 6, True, 1),
        (5, 6, True, 5),
        (6, 6, False, 5),  # gives up: SendThrottled reaches the caller, the message stays unsent
        (3, 3, False, 2),
    ],
)
def test_backoff_retries_throttled_sends_a_bounded_number_of_times(
    throttles: int, attempts: int, sent: bool, backoff_sleeps: int
) -> None:
    time = FakeTime()
    p = pacer(1000.0, time)
    calls: list[int] = []

    def send() -> str:
        calls.append(1)
        if len(calls) <= throttles:
            raise SendThrottled("slow down")
        return "msg-1"

    policy = Backoff(attempts=attempts, initial=0.25, maximum=2.0, jitter=0.1)
    if sent:
        assert send_with_backoff(send, p, policy) == "msg-1"
    else:
        with pytest.raises(SendThrottled):
            send_with_backoff(send, p, policy)
    assert len(calls) == min(throttles + 1, attempts)
    backoffs = [s for s in time.sleeps if s > 0.01]  # the pacer's own spacing is 1 ms here
    assert len(backoffs) == backoff_sleeps
    for n, slept in enumerate(backoffs):  # exponential, capped, with bounded jitter
        base = min(0.25 * 2**n, 2.0)
        assert base <= slept <= min(base + 0.1, 2.0) + 1e-9
    assert p.rate < 1000.0 if throttles else p.rate == 1000.0


def test_other_failures_are_not_retried() -> None:
    p = pacer(10.0, FakeTime())
    for failure in (SendRejected("MessageRejected"), DependencyUnavailable("down")):
        calls: list[int] = []

        def send(failure: Exception = failure, calls: list[int] = calls) -> str:
            calls.append(1)
            raise failure

        with pytest.raises(type(failure)):
            send_with_backoff(send, p)
        assert calls == [1]


def test_a_rate_limited_mailer_loses_nothing_through_the_backoff() -> None:
    """SES allows 5/s; we start believing 20/s: the pacer slows down and every message goes out once."""
    random.seed(7)
    time = FakeTime()
    mailer = RecordingMailer(rate=5.0, clock=time)
    p = pacer(20.0, time)
    addresses = [f"donor{i}@example.org" for i in range(60)]
    for address in addresses:
        send_with_backoff(lambda a=address: mailer.send(email(a)), p, Backoff(attempts=10))
    assert [e.to for _, e in mailer.sent] == addresses
    assert mailer.throttled > 0
    assert p.rate <= 20.0
