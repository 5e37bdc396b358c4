import argparse
import ctypes
import ctypes.util
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from civicore.core import jobs

logger = logging.getLogger(__name__)

# Linux: the kernel sends this signal to the delivery process when its parent worker dies.
_PR_SET_PDEATHSIG = 1


class _DispatcherProcess:
    """The delivery dispatcher in a child process (`worker --deliveries-only`): it has a core and
    an interpreter lock of its own, instead of sharing them with the job loop's housekeeping.
    Restarted if it dies; it stops when this process stops or dies."""

    def __init__(self, stdout: Any) -> None:
        self.stdout = stdout
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self.next_start = 0.0

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "civicore",
            "worker",
            "--deliveries-only",
            "--parent-pid",
            str(os.getpid()),
        ]
        self.process = subprocess.Popen(command, env=os.environ.copy())  # noqa: S603 - our own command
        self.stdout.write(f"Delivery dispatcher started (process {self.process.pid})")

    def check(self) -> None:
        """Start it again if it died (waiting longer after each failure, up to a minute)."""
        if self.process is None or self.process.poll() is None or time.monotonic() < self.next_start:
            return
        logger.error("delivery dispatcher exited with %s; starting it again", self.process.returncode)
        self.restarts += 1
        self.next_start = time.monotonic() + min(2**self.restarts, 60)
        self.start()

    def stop(self, timeout: float = 60) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()  # its claims are released when their leases run out
                self.process.wait()
        return self.process.returncode


def _follow_parent(parent_pid: int, stopping: threading.Event) -> None:
    """Stop (gracefully) when the worker that started this process is gone."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):
            pass

    def watch() -> None:  # elsewhere, and in case the parent died before prctl took effect
        while not stopping.is_set():
            if os.getppid() != parent_pid:
                stopping.set()
                return
            time.sleep(0.5)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class Command(BaseCommand):
    help = (
        "Run background jobs (notifications, result documents, audit sealing) and deliver change "
        "notifications to agencies until stopped. Both run by default; the deliveries in a process "
        "of their own (or a thread, with --dispatcher thread)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--once", action="store_true", help="Exit when no job or delivery is due.")
        only = parser.add_mutually_exclusive_group()
        only.add_argument("--deliveries-only", action="store_true", help="Only deliver change notifications.")
        only.add_argument("--jobs-only", action="store_true", help="Only run jobs and periodic housekeeping.")
        parser.add_argument(
            "--dispatcher",
            choices=("process", "thread"),
            default="process",
            help="Run the delivery dispatcher in a child process (default) or a thread of this one.",
        )
        parser.add_argument("--parent-pid", type=int, default=0, help=argparse.SUPPRESS)

    def handle(self, *args: Any, **options: Any) -> None:
        from civicore.exchange.dispatcher import Dispatcher

        stopping = threading.Event()

        def request_stop(signum: int, frame: Any) -> None:
            stopping.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        once = options["once"]
        failures: list[BaseException] = []
        delivered = {"count": 0}

        def deliver() -> None:
            try:
                delivered["count"] = Dispatcher().run(stop=stopping.is_set, until_idle=once)
            except BaseException as exc:
                failures.append(exc)
                stopping.set()  # a dead dispatcher must not leave a worker that looks healthy
                raise
            finally:
                if threading.current_thread() is not threading.main_thread():
                    connections.close_all()  # this thread's own connections

        if options["deliveries_only"]:
            if options["parent_pid"]:
                _follow_parent(options["parent_pid"], stopping)
            self.stdout.write("Civicore worker started (deliveries only)")
            deliver()
            self.stdout.write(f"Civicore worker stopped after {delivered['count']} delivery attempts")
            return

        thread = child = None
        if not options["jobs_only"]:
            if once or options["dispatcher"] == "thread":
                thread = threading.Thread(target=deliver, name="exchange-dispatcher")
                thread.start()
            else:
                child = _DispatcherProcess(self.stdout)
                child.start()

        def stop_jobs() -> bool:
            if child is not None:
                child.check()
            return stopping.is_set()

        self.stdout.write("Civicore worker started")
        count = jobs.work(once=once, stop=stop_jobs)
        if thread is not None:
            if not once:
                stopping.set()
            thread.join()
        if child is not None:
            child.stop()
        if failures:
            raise CommandError(f"The delivery dispatcher stopped: {failures[0]!r}")
        self.stdout.write(
            f"Civicore worker stopped after {count} jobs and {delivered['count']} delivery attempts"
        )
