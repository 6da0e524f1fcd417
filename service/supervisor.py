"""Runs hypercorn workers and shuts them down in the order the runbook's drain needs.

hypercorn's own `run()` closes the listener as soon as SIGTERM arrives, so a readiness probe can never see
`draining`, and it reports exit status 0 when a worker dies (pgjones/hypercorn#269). This supervisor:

1. binds the listening sockets itself, without SO_REUSEPORT (hypercorn sets it whenever workers > 1, which
   lets an unrelated server bind the same port and take a share of its connections): a taken port is a
   `BindError`, unless the operator opted in with `reuse_port` (a rolling restart on one host);
   then imports the application once and forks `config.workers` hypercorn worker processes sharing those
   very sockets, each of which dies with the supervisor (a parent-death signal), so a killed supervisor
   leaves nothing serving its port;
2. on SIGTERM, tells every worker to drain (readiness → 503 `draining`, responses carry `Connection: close`)
   while they keep serving, for `drain_delay_s`, so load balancers take the instance out of rotation;
3. then asks hypercorn to shut down gracefully: stop accepting, finish in-flight requests within
   `graceful_timeout`, exit;
4. on SIGINT (Ctrl-C) skips the delay; if a worker dies unexpectedly, stops the others and exits with the
   worker's status, so an orchestrator sees the failure.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import errno
import logging
import os
import signal
import socket
import time
from multiprocessing import get_context
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event
from types import FrameType
from typing import Any

from hypercorn.asyncio.run import asyncio_worker, uvloop_worker
from hypercorn.config import Config, Sockets
from hypercorn.utils import load_application

from service import heap

log = logging.getLogger("service.supervisor")
STOP_MARGIN_S = 5.0
_PR_SET_PDEATHSIG = 1


class BindError(Exception):
    """A listening address could not be bound (taken, not local, or not permitted)."""

    def __init__(self, addresses: list[str], error: OSError) -> None:
        reason = error.strerror or str(error)
        if error.errno == errno.EADDRINUSE:
            reason += " (another server listens there: stop it, or pick another --bind)"
        which = addresses[0] if len(addresses) == 1 else f"one of {', '.join(addresses)}"
        super().__init__(f"could not bind {which}: {reason}")


def create_listeners(config: Config, *, reuse_port: bool = False) -> Sockets:
    """The listening sockets for `config`'s addresses, with SO_REUSEPORT only when `reuse_port` asks for it.

    hypercorn decides SO_REUSEPORT from `workers` alone; a copy of the config with one worker (or two, to
    opt in) makes it decide what we mean. Our workers need no SO_REUSEPORT: they all accept on these sockets."""
    listener_config = copy.copy(config)
    listener_config.workers = 2 if reuse_port else 1
    try:
        return listener_config.create_sockets()
    except OSError as error:
        addresses = list(config.bind)
        if config.ssl_enabled:
            addresses += [*config.insecure_bind, *config.quic_bind]
        raise BindError(addresses, error) from error


def _die_with_supervisor(supervisor_pid: int) -> None:
    """Linux's parent-death signal: when the supervisor dies, however (SIGKILL, the OOM killer), the kernel
    kills this worker too, instead of leaving it serving the port for nobody to stop."""
    with contextlib.suppress(OSError, AttributeError):
        prctl = ctypes.CDLL(None, use_errno=True).prctl
        prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != supervisor_pid:  # it died before the signal was armed
        os._exit(1)


def _worker(
    config: Config, sockets: Sockets, shutdown_event: Event, draining_event: Event, supervisor_pid: int
) -> None:
    _die_with_supervisor(supervisor_pid)
    # The supervisor decides when to stop; a signal sent to the whole process group must not kill a
    # worker mid-request.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from service import lifecycle

    lifecycle.attach_shutdown_signal(draining_event)
    run_worker = uvloop_worker if config.worker_class == "uvloop" else asyncio_worker
    run_worker(config=config, sockets=sockets, shutdown_event=shutdown_event)


def _mark_dead(pid: int | None) -> None:
    if pid is None:
        return
    with contextlib.suppress(Exception):  # only meaningful in Prometheus multiprocess mode
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def _bound_unsent_data(sockets: Sockets, seconds: float) -> None:
    """A client that stops reading (zero receive window) or vanishes must not keep a connection and its send
    buffer forever: with TCP_USER_TIMEOUT the kernel closes a connection whose sent data stays unacknowledged,
    or unsent for want of window, this long (accepted connections inherit it from the listener). The edge's
    own bound on a response only stops waiting; closing the transport would still flush to such a client."""
    option = getattr(socket, "TCP_USER_TIMEOUT", None)
    if option is None:  # not Linux
        return
    for sock in sockets.insecure_sockets + sockets.secure_sockets:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, option, int(seconds * 1000))


def serve(
    config: Config,
    *,
    drain_delay_s: float,
    unsent_data_timeout_s: float | None = None,
    reuse_port: bool = False,
) -> int:
    """Serve until told to stop; return the exit status (non-zero when a worker failed).

    Raises `BindError` before any worker starts when an address cannot be bound."""
    if config.worker_class not in {"asyncio", "uvloop"}:
        raise ValueError(f"unsupported worker_class {config.worker_class!r} (use asyncio or uvloop)")
    sockets = create_listeners(config, reuse_port=reuse_port)
    if unsent_data_timeout_s is not None:
        _bound_unsent_data(sockets, unsent_data_timeout_s)
    # Forked workers start from the application this process imported (the import is most of a start: about
    # 1.4 s of CPU); spawned ones would each import it again. This process has no thread and no event loop
    # yet, which is what makes a fork safe; prometheus_client notices the new pid and writes its own files.
    _preload_application(config)
    context = get_context("fork")
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        return _supervise(config, sockets, drain_delay_s, context)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _preload_application(config: Config) -> None:
    """Import the application before the workers fork. An application that fails to load is left to the
    workers, which fail with hypercorn's own message and make the supervisor exit non-zero, as without this."""
    with contextlib.suppress(Exception):
        load_application(config.application_path, config.wsgi_max_body_size)
    # The import created this process's metric files; its live gauges would count as a live worker's.
    _mark_dead(os.getpid())
    heap.settle_after_startup()  # the workers inherit the frozen heap and the thresholds


def _supervise(config: Config, sockets: Sockets, drain_delay_s: float, context: Any) -> int:
    shutdown_event = context.Event()
    draining_event = context.Event()
    drain_until: float | None = None
    stop_deadline: float | None = None

    def on_sigterm(_signum: int, _frame: FrameType | None) -> None:
        nonlocal drain_until
        if drain_until is None:
            log.info("SIGTERM: draining before shutdown", extra={"drain_delay_s": drain_delay_s})
            draining_event.set()
            drain_until = time.monotonic() + drain_delay_s

    def on_sigint(_signum: int, _frame: FrameType | None) -> None:
        nonlocal drain_until
        draining_event.set()
        drain_until = time.monotonic()

    # Workers inherit SIGINT ignored while they start; they set their own handling in `_worker`.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    processes: list[BaseProcess] = []
    for _ in range(config.workers):
        process: Any = context.Process(
            target=_worker,
            kwargs={
                "config": config,
                "sockets": sockets,
                "shutdown_event": shutdown_event,
                "draining_event": draining_event,
                "supervisor_pid": os.getpid(),
            },
        )
        process.start()
        processes.append(process)
    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGINT, on_sigint)

    exit_code = 0
    running = list(processes)
    while running:
        wait([p.sentinel for p in running], timeout=0.1)
        now = time.monotonic()
        for process in [p for p in running if p.exitcode is not None]:
            running.remove(process)
            _mark_dead(process.pid)
            if not shutdown_event.is_set():
                log.error("a worker exited unexpectedly", extra={"exit_code": process.exitcode})
                exit_code = exit_code or (process.exitcode or 1)
                draining_event.set()
                drain_until = now
            elif process.exitcode:
                exit_code = exit_code or process.exitcode
        if drain_until is not None and now >= drain_until and not shutdown_event.is_set():
            shutdown_event.set()
            stop_deadline = now + config.graceful_timeout + STOP_MARGIN_S
        if stop_deadline is not None and now > stop_deadline:
            for process in running:
                log.error("a worker did not stop in time; killing it", extra={"pid": process.pid})
                process.kill()
            stop_deadline = None

    for sock in [*sockets.secure_sockets, *sockets.insecure_sockets, *sockets.quic_sockets]:
        sock.close()
    return exit_code
