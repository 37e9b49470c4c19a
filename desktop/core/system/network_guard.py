"""Privacy guard: every network attempt of this process is recorded, and refused unless the person
asked for it.

An audit hook (PEP 578) sees each ``socket.connect`` and ``socket.getaddrinfo`` made from Python.
Code that acts for the person (a download they started) wraps its work in
``network_purpose("…")``; anything else is refused with :class:`NetworkRefused` and logged as
unexpected, so a library that phones home cannot do it quietly. Local sockets (Unix domain, used
by the desktop's keyring service) are not network traffic and pass. A purpose may also name the
only hosts it is for (``network_purpose("MCP server weather", hosts={("127.0.0.1", 8000)})``):
any other attempt inside it is refused and logged as not allowed.
"""

from __future__ import annotations

import contextvars
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

_purpose: contextvars.ContextVar[str] = contextvars.ContextVar("cove_network_purpose", default="")
# (host, port) pairs the current purpose is limited to; None: any host.
_hosts: contextvars.ContextVar[frozenset[tuple[str, int]] | None] = contextvars.ContextVar("cove_network_hosts",
                                                                                          default=None)


class NetworkRefused(ConnectionRefusedError):
    """Cove refused a connection nobody asked for."""


@dataclass(frozen=True)
class NetworkEvent:
    """One attempt: when, where, why, and whether it was let through."""

    at: float
    kind: str      # "connect" or "lookup"
    host: str
    port: int
    purpose: str   # empty for attempts nobody asked for
    allowed: bool


class NetworkLog:
    """The attempts of this session, newest last; thread-safe."""

    def __init__(self) -> None:
        self._events: list[NetworkEvent] = []
        self._lock = threading.Lock()
        self._listeners: list[Callable[[NetworkEvent], None]] = []

    def add(self, event: NetworkEvent) -> None:
        """Record an attempt and tell the listeners (on the calling thread)."""
        with self._lock:
            self._events.append(event)
            listeners = list(self._listeners)
        for listener in listeners:
            listener(event)

    def events(self) -> list[NetworkEvent]:
        """All attempts so far."""
        with self._lock:
            return list(self._events)

    def subscribe(self, listener: Callable[[NetworkEvent], None]) -> None:
        """Call ``listener(event)`` for every new attempt."""
        with self._lock:
            self._listeners.append(listener)


@contextmanager
def network_purpose(purpose: str, hosts: Iterable[tuple[str, int]] | None = None) -> Iterator[None]:
    """Allow network access inside this block, recorded under ``purpose`` (what the person asked for);
    with ``hosts``, only lookups of those names and connects to those (host, port) pairs."""
    token = _purpose.set(purpose)
    allowed = None if hosts is None else frozenset((str(host).lower(), int(port)) for host, port in hosts)
    hosts_token = _hosts.set(allowed)
    try:
        yield
    finally:
        _hosts.reset(hosts_token)
        _purpose.reset(token)


def _within(kind: str, host: str, port: int) -> bool:
    """Whether the current purpose's host limit (if any) lets this attempt through."""
    allowed = _hosts.get()
    if allowed is None:
        return True
    if kind == "lookup":  # a lookup names the host only (its port may be a service name)
        return host.lower() in {name for name, _ in allowed}
    return (host.lower(), port) in allowed


_installed: list[NetworkLog] = []


def _host_port(address: object) -> tuple[str, int]:
    if isinstance(address, tuple) and len(address) >= 2:
        host = address[0].decode("ascii", "replace") if isinstance(address[0], bytes) else str(address[0])
        return host, int(address[1]) if isinstance(address[1], int) else 0
    return str(address), 0


def _hook(event: str, args: tuple) -> None:
    if event == "socket.connect":
        sock, address = args
        if getattr(sock, "family", None) not in (socket.AF_INET, socket.AF_INET6):
            return
        kind = "connect"
    elif event == "socket.getaddrinfo":
        address = (args[0], args[1])
        if args[0] is None:
            return
        kind = "lookup"
    else:
        return
    if not _installed:
        return
    host, port = _host_port(address)
    purpose = _purpose.get()
    within = _within(kind, host, port)
    record = NetworkEvent(time.time(), kind, host, port, purpose, bool(purpose) and within)
    for log in _installed:
        log.add(record)
    if not purpose:
        raise NetworkRefused(f"Cove blocked a {kind} to {host}:{port} that nobody asked for")
    if not within:
        raise NetworkRefused(f"Cove blocked a {kind} to {host}:{port}: {purpose} may reach only its own host")


def install(log: NetworkLog) -> NetworkLog:
    """Start recording (and refusing unrequested) network attempts of this process into ``log``."""
    if not _installed and not getattr(sys, "_cove_guard_hooked", False):
        sys.addaudithook(_hook)
        sys._cove_guard_hooked = True  # type: ignore[attr-defined]  # noqa: SLF001 - hooks cannot be removed
    _installed.append(log)
    return log


def uninstall(log: NetworkLog) -> None:
    """Stop recording into ``log`` (the hook itself stays, idle, for the life of the process)."""
    if log in _installed:
        _installed.remove(log)
