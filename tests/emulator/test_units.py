"""Pure pieces: the sliding-window rate limiter, fault matching, the journal's body description."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from postventa.emulator.faults import FaultInjector, FaultRule, fault_answer
from postventa.emulator.journal import describe_body
from postventa.emulator.ratelimit import WINDOW_SECONDS, RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_window_slides() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock)
    assert [limiter.allow("app", "read", 3) for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("app", "write", 3)  # writes have their own budget
    clock.now = WINDOW_SECONDS - 0.1
    assert not limiter.allow("app", "read", 3)
    clock.now = WINDOW_SECONDS
    assert limiter.allow("app", "read", 3)


@given(
    gaps=st.lists(st.floats(min_value=0, max_value=30, allow_nan=False), max_size=60),
    limit=st.integers(min_value=1, max_value=5),
)
def test_never_more_than_the_limit_in_any_minute(gaps: list[float], limit: int) -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock)
    allowed: list[float] = []
    for gap in gaps:
        clock.now += gap
        if limiter.allow("app", "read", limit):
            allowed.append(clock.now)
    for index, start in enumerate(allowed):
        in_window = [moment for moment in allowed[index:] if moment < start + WINDOW_SECONDS]
        assert len(in_window) <= limit


def test_fault_routes_are_globs_over_method_and_path() -> None:
    rule = FaultRule("POST /messages/*", "500")
    assert rule.matches("POST", "/messages/packs/1/sellers/2")
    assert rule.matches("post", "/messages/action_guide/packs/1/option")
    assert not rule.matches("GET", "/messages/packs/1/sellers/2")
    injector = FaultInjector(seed=1)
    injector.replace([FaultRule("GET /users/me", "503", rate=0.0), FaultRule("GET *", "500")])
    picked = injector.pick("GET", "/users/me")
    assert picked is not None
    assert picked.kind == "500"


def test_fault_answers() -> None:
    answer = fault_answer(FaultRule("*", "429", retry_after_seconds=2))
    assert (answer.status, answer.headers) == (429, {"Retry-After": "2"})
    assert fault_answer(FaultRule("*", "429")).headers == {}
    assert fault_answer(FaultRule("*", "timeout")).status == 504
    assert FaultRule("*", "timeout").wait_seconds == 30


def test_body_descriptions() -> None:
    assert describe_body("application/json", b'{"a": 1}') == {"a": 1}
    assert describe_body("application/json", b"") is None
    assert describe_body("text/plain", b"not json") == "not json"
    multipart = (
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="file"; filename="a.pdf"\r\n'
        b"Content-Type: application/pdf\r\n\r\n"
        b"%PDF\r\n"
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="note"\r\n\r\n'
        b"hola\r\n"
        b"--XyZ--\r\n"
    )
    assert describe_body("multipart/form-data; boundary=XyZ", multipart) == {
        "multipart": [{"name": "file", "filename": "a.pdf", "size": 4}, {"name": "note"}]
    }
