"""Shared parts of the end-to-end tests: the daemon as a subprocess and its log stream, configs
written as TOML, a webhook receiver, and read-only views of the journal file.

Why the log stream: the daemon runs in another process, so the way to wait for "HTTP is
listening" or "the bot filled an order" without polling is to read what the daemon says. With
``--log-json`` every stderr line is one loguru record (``record.message``, ``record.extra``);
lines that are not records (``--check-config``-style problem lines) are kept apart. Without it
(``json_logs=False``, the daemon as a user runs it) each human-format line is read back into a
record with its level, message and extra.

Every subprocess is killed (SIGKILL) when its ``open_daemon`` block exits, whatever happened in
it, and both pipes are drained for its whole life so the daemon never blocks on a full pipe.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import httpx
import hypercorn.config
import hypercorn.trio
import orjson
import trio

from actors.journal.store import FillRecord, JournalStore, OrderRecord

ROOT = Path(__file__).resolve().parents[2]
RUN_PY = ROOT / "run.py"
TOKEN_ENV = "BOTCRIPTOFY_TOKEN"
REAP_TIMEOUT_S = 10.0
HEALTH_POLL_S = 0.1

Record = dict[str, Any]
Predicate = Callable[[Record], bool]


# --- the daemon subprocess ----------------------------------------------------------------------


@attrs.define(eq=False)
class Daemon:
    """A running ``run.py``: its log records as they arrive, and ways to wait for them."""

    process: trio.Process
    records: list[Record] = attrs.field(factory=list)
    stray_stderr: list[str] = attrs.field(factory=list)  # stderr lines that are not records
    stdout: list[str] = attrs.field(factory=list)
    _changed: trio.Event = attrs.field(factory=trio.Event)
    _stderr_closed: trio.Event = attrs.field(factory=trio.Event)
    _stdout_closed: trio.Event = attrs.field(factory=trio.Event)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _on_stderr_line(self, line: str) -> None:
        try:
            record = json.loads(line)["record"]
        except (ValueError, KeyError, TypeError):
            record = _human_record(line)
        if record is None:
            self.stray_stderr.append(line)
        else:
            self.records.append(record)
        self._notify()

    async def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        try:
            await _read_lines(self.process.stderr, self._on_stderr_line)
        finally:
            self._stderr_closed.set()
            self._notify()

    def _on_stdout_line(self, line: str) -> None:
        self.stdout.append(line)
        self._notify()

    async def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        try:
            await _read_lines(self.process.stdout, self._on_stdout_line)
        finally:
            self._stdout_closed.set()
            self._notify()

    async def wait_log(self, predicate: Predicate, *, after: int = 0) -> Record:
        """The first record from index ``after`` on that matches; fails if the daemon's stderr
        ends first (it exited) so a test never waits out its whole deadline on a dead daemon."""
        return self.records[await self._wait_index(predicate, after)]

    async def wait_logs(self, predicate: Predicate, count: int, *, after: int = 0) -> list[Record]:
        """The first ``count`` matching records from index ``after`` on."""
        found: list[Record] = []
        index = after
        while len(found) < count:
            index = await self._wait_index(predicate, index)
            found.append(self.records[index])
            index += 1
        return found

    async def _wait_index(self, predicate: Predicate, index: int) -> int:
        while True:
            while index < len(self.records):
                if predicate(self.records[index]):
                    return index
                index += 1
            if self._stderr_closed.is_set():
                raise AssertionError(
                    f"daemon exited (code {self.process.returncode}) before the expected log "
                    f"line; last lines:\n{self.tail()}"
                )
            await self._changed.wait()

    async def wait_stdout(self, predicate: Callable[[str], bool]) -> str:
        """The first stdout line that matches; fails if stdout ends first."""
        index = 0
        while True:
            while index < len(self.stdout):
                if predicate(self.stdout[index]):
                    return self.stdout[index]
                index += 1
            if self._stdout_closed.is_set():
                raise AssertionError(
                    f"daemon stdout ended (code {self.process.returncode}) before the expected"
                    f" line; stdout:\n{chr(10).join(self.stdout[-30:])}"
                )
            await self._changed.wait()

    async def http_url(self) -> str:
        record = await self.wait_log(log_is("http listening"))
        return record["extra"]["url"]

    async def wait_exit(self) -> int:
        """The exit code, once the process has exited and both pipes are drained."""
        await self.process.wait()
        await self._stderr_closed.wait()
        await self._stdout_closed.wait()
        assert self.process.returncode is not None
        return self.process.returncode

    async def stop(self, signum: int = signal.SIGTERM) -> int:
        self.process.send_signal(signum)
        return await self.wait_exit()

    def logged(self, predicate: Predicate) -> list[Record]:
        return [r for r in self.records if predicate(r)]

    def tail(self, lines: int = 30) -> str:
        text = [f"{r['level']['name']} {r['message']} {r['extra']}" for r in self.records]
        return "\n".join([*text[-lines:], *self.stray_stderr[-lines:]])

    def _kill_if_running(self) -> None:
        if self.process.returncode is None:
            self.process.kill()


LEVELS = {"TRACE": 5, "DEBUG": 10, "INFO": 20, "SUCCESS": 25, "WARNING": 30, "ERROR": 40}
LEVELS["CRITICAL"] = 50


_QUOTED = r'"(?:[^"\\]|\\.)*"'  # a JSON string
_HUMAN_LINE = re.compile(
    r"(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) (?P<level>[A-Z]+) +(?P<message>.*?)"
    rf"(?P<fields>(?: [A-Za-z_]\w*=(?:{_QUOTED}|[^\s\"]\S*|))*)"
)
_HUMAN_FIELD = re.compile(rf" ([A-Za-z_]\w*)=({_QUOTED}|[^\s\"]\S*|)")


def _human_record(line: str) -> Record | None:
    """A record from a line in the human format (``time level message key=value ...``, see
    ``supervisor.logging``), or None if the line is not one (a traceback line, a problem line).
    A quoted value is a JSON string; a bare one is read as JSON when it is (numbers, ``null``,
    ``true``, containers), else kept as text."""
    match = _HUMAN_LINE.fullmatch(line)
    if match is None or match["level"] not in LEVELS:
        return None
    extra: dict[str, Any] = {}
    for key, text in _HUMAN_FIELD.findall(match["fields"]):
        try:
            extra[key] = json.loads(text)
        except ValueError:
            extra[key] = text
    level = match["level"]
    return {
        "level": {"name": level, "no": LEVELS[level]},
        "message": match["message"],
        "extra": extra,
    }


async def _read_lines(stream: trio.abc.ReceiveStream, on_line: Callable[[str], None]) -> None:
    buffer = b""
    while chunk := await stream.receive_some(65536):
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            on_line(line.decode(errors="replace"))
    if buffer:
        on_line(buffer.decode(errors="replace"))


@asynccontextmanager
async def open_daemon(
    *args: str, cwd: Path, env: Mapping[str, str] | None = None, json_logs: bool = True
) -> AsyncIterator[Daemon]:
    """``python run.py --log-json *args`` in ``cwd`` (without ``--log-json`` if not
    ``json_logs``); the control token variable is unset unless ``env`` sets it. SIGKILLed on
    exit from the block if still running."""
    environment = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    environment.update(env or {})
    process = await trio.lowlevel.open_process(
        [sys.executable, str(RUN_PY), *(["--log-json"] if json_logs else []), *args],
        cwd=cwd,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    daemon = Daemon(process)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(daemon._read_stderr)
            nursery.start_soon(daemon._read_stdout)
            try:
                yield daemon
            finally:
                daemon._kill_if_running()  # the readers end when the pipes close
    finally:
        daemon._kill_if_running()
        with trio.CancelScope(shield=True), trio.move_on_after(REAP_TIMEOUT_S):
            await process.wait()
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                with trio.CancelScope(shield=True):
                    await pipe.aclose()


def log_is(message: str, **extra: Any) -> Predicate:
    """A predicate: the record's message is ``message`` and its extra has these values."""

    def matches(record: Record) -> bool:
        if record["message"] != message:
            return False
        fields = record["extra"]
        return all(fields.get(key) == value for key, value in extra.items())

    return matches


# --- configs ------------------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (str, Decimal, Path)):
        return json.dumps(str(value))  # a JSON string of ASCII text is a TOML basic string
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Sequence):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def toml_text(config: Mapping[str, Any]) -> str:
    """Top-level mappings become ``[tables]``, lists of mappings ``[[arrays of tables]]``;
    anything nested deeper is written inline."""
    lines: list[str] = []
    for key, value in config.items():
        if isinstance(value, Mapping):
            lines += [f"[{key}]", *(f"{k} = {_toml_value(v)}" for k, v in value.items())]
        elif isinstance(value, list) and all(isinstance(v, Mapping) for v in value):
            for table in value:
                lines += [f"[[{key}]]", *(f"{k} = {_toml_value(v)}" for k, v in table.items())]
        else:
            lines.insert(0, f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def write_config(path: Path, config: Mapping[str, Any]) -> Path:
    path.write_text(toml_text(config), encoding="utf-8")
    return path


def local_exchange(name: str, server: Any, **overrides: Any) -> dict[str, Any]:
    """An ``[[exchanges]]`` table for a local ``ExchangeServer``."""
    return {"name": name, "protocol": server.protocol, "url": server.ws_url, **overrides}


# --- HTTP ---------------------------------------------------------------------------------------


async def wait_health(
    client: httpx.AsyncClient, ready: Callable[[int, dict[str, Any]], bool]
) -> dict[str, Any]:
    """Poll ``/health`` until ``ready(status, body)``; the caller bounds it. (The daemon is
    another process: its HTTP answer is the state to wait on, so this is the one poll.)"""
    while True:
        response = await client.get("/health")
        body = response.json()
        if ready(response.status_code, body):
            return body
        await trio.sleep(HEALTH_POLL_S)


@attrs.frozen
class Delivery:
    path: str
    body: Any
    at: float  # trio.current_time()


@attrs.define(eq=False)
class WebhookInbox:
    """What a webhook receiver got, in arrival order, with a way to wait for more."""

    deliveries: list[Delivery] = attrs.field(factory=list)
    _changed: trio.Event = attrs.field(factory=trio.Event)

    def add(self, delivery: Delivery) -> None:
        self.deliveries.append(delivery)
        self._changed.set()
        self._changed = trio.Event()

    def kinds(self) -> list[str]:
        return [d.body.get("kind") for d in self.deliveries]

    async def wait_for(self, predicate: Callable[[Delivery], bool]) -> Delivery:
        index = 0
        while True:
            while index < len(self.deliveries):
                delivery = self.deliveries[index]
                index += 1
                if predicate(delivery):
                    return delivery
            await self._changed.wait()


@asynccontextmanager
async def open_webhook_receiver() -> AsyncIterator[tuple[str, WebhookInbox]]:
    """A hypercorn ASGI endpoint on 127.0.0.1:0 that records every POSTed JSON body."""
    inbox = WebhookInbox()

    async def app(scope: Mapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        if scope["method"] == "POST":
            inbox.add(Delivery(scope["path"], orjson.loads(body), trio.current_time()))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    config = hypercorn.config.Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = None
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(hypercorn.trio.serve, app, config)
        try:
            yield binds[0] + "/hook", inbox
        finally:
            nursery.cancel_scope.cancel(reason="webhook receiver closed")


# --- the journal file ---------------------------------------------------------------------------


@attrs.frozen
class JournalView:
    """The journal's content, read through the product's own store code."""

    integrity: str
    initial_quote: Mapping[str, Decimal]
    orders: Mapping[str, list[OrderRecord]]  # by bot, in seq order
    fills: Mapping[str, list[FillRecord]]  # by bot, in fill order
    state: Mapping[str, Mapping[str, str]]
    orphan_fills: int  # fills whose client id is not a journaled order

    def order_ids(self) -> list[str]:
        return [o.intent.client_id for orders in self.orders.values() for o in orders]


def copy_journal(path: Path, into: Path) -> Path:
    """Copy the database with its WAL and shared-memory files (after kill -9 the committed
    transactions may live only in the WAL), so it can be read without touching the original."""
    into.mkdir(parents=True)
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{path}{suffix}")
        if source.exists():
            shutil.copyfile(source, into / (path.name + suffix))
    return into / path.name


def read_journal(path: Path) -> JournalView:
    """Open ``path`` (a copy, or a file no process has open: opening recovers its WAL) and read
    everything."""
    store = JournalStore(path)
    store.open()
    try:
        db = store.db
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        bots = dict(db.execute("SELECT bot_id, initial_quote FROM bots").fetchall())
        state: dict[str, dict[str, str]] = {bot: {} for bot in bots}
        for bot, key, value in db.execute("SELECT bot_id, key, value FROM bot_state"):
            state.setdefault(bot, {})[key] = value
        orphans = db.execute(
            "SELECT count(*) FROM fills f LEFT JOIN orders o ON o.client_id = f.client_id"
            " WHERE o.client_id IS NULL"
        ).fetchone()[0]
        return JournalView(
            integrity=integrity,
            initial_quote={bot: Decimal(quote) for bot, quote in bots.items()},
            orders={bot: store.orders(bot) for bot in bots},
            fills={bot: store.fills(bot) for bot in bots},
            state=state,
            orphan_fills=orphans,
        )
    finally:
        store.close()


def read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection to the journal file itself (for a file the daemon closed)."""
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)
