"""ScriptBatcher: the worker threads of one process share their Redis round trips.

A worker writes twice per message (START, FINISH). On loopback each round
trip costs a write, a read and a wake-up on both sides, and on a small VM
that costs more CPU than the scripts themselves. The threads of a busy
process often want Redis at the same moment, so the first thread to arrive
(the leader) sends every script waiting at that moment in one write and
reads their replies in order; the others wait for theirs. After one round
trip the leader hands its role to the next waiting thread and goes back to
its task, so no thread is kept serving the others.

Only one leader exists at a time, so one connection serves the process.

A durable command (a task's final state) is only answered once a replica
has it: the round trip that carries it ends with the store's WAIT, and if
that WAIT gets no reply (the master died), the durable commands of the round
trip fail like a broken connection, so they are written again to the new
master (the scripts are idempotent).
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Optional

import redis

from pipeline.state.replicas import ReplicaWait


class _Call:
    __slots__ = ("command", "durable", "done", "lead", "result", "error", "finished")

    def __init__(self, command: tuple, durable: bool) -> None:
        self.command = command
        self.durable = durable
        # Held until the call is answered (or its thread is made leader): a bare
        # lock is the cheapest way to park and wake a thread (an Event is a
        # Condition around one, at three times the cost per task).
        self.done = threading.Lock()
        self.done.acquire()
        self.lead = False
        self.result: Any = None
        self.error: BaseException | None = None
        self.finished = False

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.result


class ScriptBatcher:
    def __init__(self, make_connection: Callable[[], redis.Connection], replica_wait: Optional[ReplicaWait] = None) -> None:
        self._make_connection = make_connection
        self._replica_wait = replica_wait or ReplicaWait()
        self._connection: redis.Connection | None = None
        self._lock = threading.Lock()
        self._waiting: list[_Call] = []
        self._leading = False

    def execute(self, *command, durable: bool = False) -> Any:
        """Run one command (as ``connection.send_command`` takes it) and return its reply.

        Error replies are raised as redis-py raises them; a connection error
        fails every command of the round trip it broke. A *durable* command
        returns once the replicas the store waits for have it (see module doc).
        """
        call = _Call(command, durable)
        with self._lock:
            self._waiting.append(call)
            follower = self._leading
            self._leading = True
        try:
            if follower:
                call.done.acquire()
                if not call.lead:
                    return call.outcome()
        except BaseException:  # interrupted (an asynchronous exception) just as it was made leader
            if call.lead and not call.finished:
                self._lead(call)
            raise
        self._lead(call)
        return call.outcome()

    def _lead(self, mine: _Call) -> None:
        try:
            while not mine.finished:
                with self._lock:
                    batch, self._waiting = self._waiting, []
                self._round_trip(batch, mine)
        finally:  # even when this thread is interrupted, the role passes on: nobody may wait forever
            self._hand_over()

    def _hand_over(self) -> None:
        with self._lock:
            if not self._waiting:
                self._leading = False
                return
            successor = self._waiting[0]
            successor.lead = True
        successor.done.release()

    def _round_trip(self, batch: list[_Call], mine: _Call) -> None:
        try:
            connection = self._connection
            if connection is None:
                # connect() is where a Sentinel-managed connection asks for the
                # master; sending on an unconnected one would skip that.
                connection = self._make_connection()
                connection.connect()
                self._connection = connection
            commands = [call.command for call in batch]
            wait = self._replica_wait.command() if any(call.durable for call in batch) else None
            if wait:
                commands.append(wait)
            connection.send_packed_command(connection.pack_commands(commands))
            for call in batch:
                try:
                    call.result = connection.read_response()
                except redis.ResponseError as exc:
                    call.error = exc
                call.finished = not (wait and call.durable)
            if wait:
                self._replica_wait.acknowledged(connection.read_response())
        except BaseException as exc:
            # The connection broke, or this thread was interrupted mid-read (an
            # asynchronous exception): either way the connection is out of step,
            # and the unanswered calls fail as a broken connection (their threads
            # wait for Redis and retry); an interruption stays this thread's own.
            if self._connection is not None:
                self._connection.disconnect()
                self._connection = None
            broken = exc if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)) else redis.ConnectionError(
                f"Redis round trip interrupted by {type(exc).__name__}")
            for call in batch:
                if not call.finished:
                    call.error = broken
            if broken is not exc:
                raise
        finally:
            for call in batch:
                call.finished = True
                if call is not mine:
                    call.done.release()
