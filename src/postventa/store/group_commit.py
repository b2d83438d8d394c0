"""Group commit: writes handed in while one transaction is being written go together in the next.

Sends (on SQLite) and delivery outcomes (on both databases) are small writes whose cost is mostly
their transaction's: its commit waits for the disk, and SQLite has one writer at a time. Here the
writes of the moment share one transaction and one commit. Nothing waits for company: a write alone
goes at once, and under load a transaction carries as many writes as arrived meanwhile.

Each caller still learns its own result, and only once its write is committed. The rule for a
member's failure, the same for every user:

- a member that raises having changed nothing (a refused send: its checks all come before its first
  write) gets its error, and the group goes on without it;
- a member that raises after changing rows, or a commit that fails, rolls the whole group back;
  then every member that had not been refused is written again alone, in a transaction of its own,
  so that only a member that fails by itself fails its caller.

A member's write may therefore run twice: it must read what it needs inside the transaction it is
given and keep nothing from a run that was rolled back, but what it learned before (a check it
need not repeat) it may keep.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

Item = TypeVar("Item")
Result = TypeVar("Result")
ItemIn = TypeVar("ItemIn", contravariant=True)
ResultOut = TypeVar("ResultOut", covariant=True)

OpenTransaction = Callable[[], AbstractAsyncContextManager[AsyncConnection]]
WriteOne = Callable[[AsyncConnection, Item], Awaitable[Result]]
WriteMany = Callable[[AsyncConnection, Sequence[Item]], Awaitable[Sequence[Result]]]
RowsChanged = Callable[[AsyncConnection], int | None]


class Writes(Protocol[ItemIn, ResultOut]):
    """What writers of items use: `GroupCommit`, or `WriteAlone`."""

    async def write(self, item: ItemIn) -> ResultOut:
        """Write `item`; its result once committed, or its error."""
        ...

    async def flush(self) -> None:
        """Wait until every item handed in so far is written (or has failed)."""
        ...


@dataclass(slots=True)
class _Member(Generic[Item, Result]):
    item: Item
    written: asyncio.Future[Result]
    refused: bool = False  # raised having changed nothing: not written again


class _GroupFailed(Exception):
    """A member changed rows and then raised: the group's transaction must not commit."""


class GroupCommit(Generic[Item, Result]):
    """Writes `Item`s as many to a transaction as are waiting, under the module's rule.

    `write_one` writes one item in the transaction it is given. `write_many`, when given, writes
    several at once (faster than one by one, e.g. in one round trip) and is used for a group of more
    than one; it cannot tell one member's failure from another's, so any error of it counts as the
    group's. `rows_changed` reports the rows the connection has changed so far (None: unknown, any
    error then counts as the group's).
    """

    def __init__(
        self,
        open_transaction: OpenTransaction,
        write_one: WriteOne[Item, Result],
        *,
        write_many: WriteMany[Item, Result] | None = None,
        rows_changed: RowsChanged | None = None,
    ) -> None:
        self._open = open_transaction
        self._write_one = write_one
        self._write_many = write_many
        self._rows_changed = rows_changed or _unknown
        self._waiting: list[_Member[Item, Result]] = []
        self._writer: asyncio.Task[None] | None = None

    async def write(self, item: Item) -> Result:
        """Write `item` with whatever else is waiting; its result once committed, or its error."""
        loop = asyncio.get_running_loop()
        member: _Member[Item, Result] = _Member(item, loop.create_future())
        self._waiting.append(member)
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write_waiting())
        # A caller cancelled (a client gone, a shutdown) cancels only its future: its item is still
        # written with its group, whose settling passes over a future already done.
        return await member.written

    async def flush(self) -> None:
        """Wait until every item handed in so far is written (or has failed)."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)

    async def _write_waiting(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting, []
            if len(group) == 1:
                await self._write_alone(group[0])
                continue
            try:
                written = await self._write_group(group)
            except Exception:  # the group's: each not refused, alone, so only a bad one fails
                for member in group:
                    if not member.refused:
                        await self._write_alone(member)
                continue
            for member, result in written:
                if not member.written.done():
                    member.written.set_result(result)

    async def _write_group(
        self, group: list[_Member[Item, Result]]
    ) -> list[tuple[_Member[Item, Result], Result]]:
        """One transaction for the group: the members written and their results (settled once it
        commits); a refused member's error is settled at once."""
        async with self._open() as connection:
            if self._write_many is not None:
                results = await self._write_many(connection, [member.item for member in group])
                return list(zip(group, results, strict=True))
            written: list[tuple[_Member[Item, Result], Result]] = []
            for member in group:
                before = self._rows_changed(connection)
                try:
                    written.append((member, await self._write_one(connection, member.item)))
                except Exception as error:
                    if before is None or self._rows_changed(connection) != before:
                        raise _GroupFailed from error
                    member.refused = True
                    _settle_error(member.written, error)
            return written

    async def _write_alone(self, member: _Member[Item, Result]) -> None:
        try:
            async with self._open() as connection:
                result = await self._write_one(connection, member.item)
        except Exception as error:
            _settle_error(member.written, error)
        else:
            if not member.written.done():
                member.written.set_result(result)


class WriteAlone(Generic[Item, Result]):
    """`GroupCommit`'s interface for writes that are better each in its own transaction (PostgreSQL's
    sends: its writers run in parallel on a pool, and its own commits group at the log)."""

    def __init__(self, open_transaction: OpenTransaction, write_one: WriteOne[Item, Result]) -> None:
        self._open = open_transaction
        self._write_one = write_one

    async def write(self, item: Item) -> Result:
        """Write `item` in a transaction of its own; its result once committed, or its error."""
        async with self._open() as connection:
            return await self._write_one(connection, item)

    async def flush(self) -> None:
        """Nothing is ever waiting."""


def _unknown(_connection: AsyncConnection) -> None:
    return None


def _settle_error(written: asyncio.Future[Result], error: BaseException) -> None:
    if not written.done():
        written.set_exception(error)
        written.exception()  # retrieved here: the caller re-raises it, or is gone (cancelled)
