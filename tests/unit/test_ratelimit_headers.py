"""The rate-limit headers: the raw form every accepted send carries is the same as the headers every
other response gets."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from postventa.api.ratelimit import RateLimitState

STATES = st.builds(
    RateLimitState,
    allowed=st.booleans(),
    policy=st.sampled_from(["send", "read"]),
    limit=st.integers(1, 10**9),
    window_seconds=st.integers(1, 86_400),
    remaining=st.integers(0, 10**9),
    reset_seconds=st.integers(0, 86_400),
    retry_after_seconds=st.integers(-1, 86_400),
)


@given(STATES)
def test_raw_headers_are_the_headers_encoded(state: RateLimitState) -> None:
    expected = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in state.headers().items()]
    assert state.raw_headers() == expected


def test_a_refusal_says_when_to_retry() -> None:
    state = RateLimitState(
        allowed=False,
        policy="send",
        limit=10,
        window_seconds=60,
        remaining=0,
        reset_seconds=42,
        retry_after_seconds=42,
    )
    assert dict(state.raw_headers()) == {
        b"x-ratelimit-limit": b"10",
        b"x-ratelimit-remaining": b"0",
        b"x-ratelimit-reset": b"42",
        b"x-ratelimit-retryafter": b"42",
        b"ratelimit-policy": b'"send";q=10;w=60',
        b"ratelimit": b'"send";r=0;t=42',
        b"retry-after": b"42",
    }
