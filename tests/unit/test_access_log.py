"""The access log line: written straight, the same JSON object structlog would write, secrets masked."""

from __future__ import annotations

import asyncio
import json
import logging
import select
from collections.abc import Callable, Iterator

import pytest
import structlog

from postventa import logs
from postventa.logs import configure_logging, log_delivery_attempt, log_request


@pytest.fixture
def stderr(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], str]]:
    """What the test wrote on stderr (logging is configured inside the test, on pytest's stream);
    afterwards the process's logging is as it was, for the tests that run next in this process."""
    root = logging.getLogger()
    chatty = [logging.getLogger(name) for name in ("httpx2", "httpcore2")]
    saved = (
        logs._access_log.stream,
        logs._access_log.enabled,
        root.handlers[:],
        root.level,
        [logger.level for logger in chatty],
        structlog.get_config(),
    )
    yield lambda: capsys.readouterr().err
    logs._access_log.stream, logs._access_log.enabled, root.handlers[:], level, levels, config = saved
    root.setLevel(level)
    for logger, logger_level in zip(chatty, levels, strict=True):
        logger.setLevel(logger_level)
    structlog.configure(**config)


def test_one_json_line_per_request_with_the_path_masked(stderr):
    configure_logging("info")

    log_request("abc123", "POST", "/v2/orders/pv_0123456789ab_s3cr3tS3cr3t/messages", 200, 1.25)

    [line] = stderr().splitlines()
    event = json.loads(line)
    assert event.pop("timestamp").endswith("Z")
    assert event == {
        "event": "request",
        "request_id": "abc123",
        "method": "POST",
        "path": "/v2/orders/pv_[redacted]/messages",
        "status": 200,
        "duration_ms": 1.25,
        "level": "info",
    }


def test_nothing_below_the_configured_level(stderr):
    configure_logging("warning")

    log_request("abc123", "GET", "/healthz", 200, 0.1)

    assert stderr() == ""


def test_text_json_cannot_carry_still_gets_its_line(stderr):
    configure_logging("info")

    log_request("abc123", "GET", "/v2/orders/\ud800", 404, 0.1)  # a lone surrogate: not UTF-8

    [line] = stderr().splitlines()
    assert '"event": "request"' in line
    assert '"status": 404' in line


def test_one_json_line_per_delivery_attempt_as_structlog_would_write_it(stderr):
    configure_logging("info")

    log_delivery_attempt(42, 3, "action_guide", "retry", "marketplace_unreachable")
    structlog.get_logger("postventa.worker").info(
        "delivery_attempt",
        message_id=42,
        attempt=3,
        route="action_guide",
        outcome="retry",
        error_code="marketplace_unreachable",
    )

    straight, through_structlog = (json.loads(line) for line in stderr().splitlines())
    assert straight.pop("timestamp").endswith("Z")
    through_structlog.pop("timestamp")
    assert straight == through_structlog
    assert straight["event"] == "delivery_attempt"
    assert straight["error_code"] == "marketplace_unreachable"


def test_no_delivery_attempt_line_above_info(stderr):
    configure_logging("warning")

    log_delivery_attempt(42, 1, "action_guide", "sent", None)

    assert stderr() == ""


class CountingStream:
    """A stream that records each write: the lines of one turn of the loop come in one."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return len(text)

    def flush(self) -> None:
        pass


async def test_a_loop_s_lines_are_written_together_at_its_next_turn_in_order(stderr):
    configure_logging("info")
    stream = logs._access_log.stream = CountingStream()

    for number in range(3):
        log_request(f"r{number}", "POST", "/v2/orders/1/messages", 200, 1.0)
    assert stream.writes == []  # this turn is not over
    await asyncio.sleep(0)

    [written] = stream.writes
    assert [json.loads(line)["request_id"] for line in written.splitlines()] == ["r0", "r1", "r2"]


def test_lines_left_by_a_loop_that_stopped_are_written_by_the_next_and_at_exit(stderr):
    configure_logging("info")
    stream = logs._access_log.stream = CountingStream()

    async def log_then_stop(request_id: str) -> None:
        log_request(request_id, "GET", "/healthz", 200, 0.1)

    loop = asyncio.new_event_loop()
    loop.run_until_complete(log_then_stop("first"))  # its turn to write may never come
    loop.close()
    asyncio.run(log_then_stop("second"))
    logs._access_log.flush_all()  # what the process does at exit

    lines = "".join(stream.writes).splitlines()
    assert [json.loads(line)["request_id"] for line in lines] == ["first", "second"]


async def test_a_busy_turn_is_written_in_whole_lines_of_at_most_pipe_buf_bytes(stderr):
    # Several serve processes may share one stderr pipe: a write up to PIPE_BUF bytes is never
    # interleaved with another process's, so no line is cut by another's.
    configure_logging("info")
    stream = logs._access_log.stream = CountingStream()

    for number in range(200):
        log_request(f"r{number}", "GET", f"/v2/orders/{number}/messages/ñandú", 200, 1.0)
    await asyncio.sleep(0)

    assert len(stream.writes) > 1
    assert all(len(written.encode()) <= select.PIPE_BUF for written in stream.writes)
    assert all(written.endswith("\n") for written in stream.writes)
    lines = "".join(stream.writes).splitlines()
    assert [json.loads(line)["request_id"] for line in lines] == [f"r{number}" for number in range(200)]
