"""Running pg_dump, psql and pg_restore as pipes: stdin fed from a stream, stdout handed to a consumer,
stderr drained concurrently (a tool writing more than a pipe's worth of warnings never blocks)."""

from __future__ import annotations

import os
import subprocess
import threading
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from typing import IO, BinaryIO

CHUNK = 1 << 20  # bytes moved per read: large enough to keep every process of the pipe busy
STDERR_LINES = 200  # the tail of a tool's stderr kept for its error message; the rest is only counted


class Tool:
    """One running tool. Use as a context manager: leaving it by an exception kills the tool *before*
    its stdin is closed, so a psql fed a broken stream never sees end-of-file and never commits."""

    def __init__(self, cmd: list[str], stdin: bool = False, stdout: bool = False,
                 env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                     stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env={**os.environ, **(env or {})})
        self.stderr_lines: deque[str] = deque(maxlen=STDERR_LINES)
        self.stderr_count = 0
        self._consumer_error: BaseException | None = None
        self._threads = [threading.Thread(target=self._drain_stderr, daemon=True)]
        self._threads[0].start()

    def __enter__(self) -> Tool:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None:
            self.proc.kill()
        self._close_stdin()
        self.proc.wait()
        for thread in self._threads:
            thread.join()

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self.stderr_count += 1
            self.stderr_lines.append(raw.decode(errors="replace").rstrip())

    def _close_stdin(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            with suppress(BrokenPipeError, OSError):
                self.proc.stdin.close()

    def consume_stdout(self, consumer: Callable[[IO[bytes]], None]) -> None:
        """Hand the tool's stdout to ``consumer`` in a thread of its own; its error is raised by finish()."""
        def run() -> None:
            try:
                consumer(self.proc.stdout)
            except BaseException as err:
                self._consumer_error = err
                self.proc.kill()
        thread = threading.Thread(target=run, daemon=True)
        self._threads.append(thread)
        thread.start()

    def feed(self, reader: BinaryIO) -> None:
        """Copy ``reader`` into the tool's stdin, then close it; a tool that stops reading (it failed)
        ends the copy, and its exit status tells why."""
        assert self.proc.stdin is not None
        try:
            while chunk := reader.read(CHUNK):
                self.proc.stdin.write(chunk)
        except BrokenPipeError:
            pass
        self._close_stdin()

    def finish(self) -> int:
        """Wait for the tool and its threads; its exit status (a consumer's error is raised)."""
        self._close_stdin()
        code = self.proc.wait()
        for thread in self._threads:
            thread.join()
        if self._consumer_error is not None:
            raise self._consumer_error
        return code

    @property
    def stderr(self) -> str:
        return "\n".join(self.stderr_lines)
