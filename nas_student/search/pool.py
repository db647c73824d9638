"""Local parallel search: the search process starts its helper processes once, and every
process claims trials from the same study until it has its trials.

On the CPU (Linux) the helpers are forked once the search context is ready, so they share
what the search process computed (the data, the teacher's outputs, the costs) and start
working within a second; elsewhere (a GPU, which does not survive a fork, or a platform
without fork) each helper is a fresh interpreter that joins the run as ``nas-student worker``
does, reading the context from the run folder.

Every guarantee of one process holds, because it is the claim that makes it (see
:mod:`nas_student.search.study`): trials are never over ``--trials``, a killed process's trial
is failed and taken over by another, no student is trained twice (a process that samples a
student another is training waits for it and copies its record). A helper dies with the search
(``PR_SET_PDEATHSIG`` on Linux; otherwise it is interrupted when the search stops).

What stays reproducible: each student's training (its seed is the architecture's, not the
process's). What does not: which students are proposed, since the sampler sees trials finish
in whatever order the processes finish them. ``--workers 1`` reproduces a run exactly.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from nas_student.errors import NasStudentError
from nas_student.search.context import SearchContext

#: ``--workers auto`` takes the usable cores, at most this many (one SQLite file serialises writes)
MAX_AUTO = 8
#: overrides ``auto`` (e.g. the test suite, whose own processes already fill the cores)
ENV = "NAS_STUDENT_WORKERS"
STOP_S = 10.0
_log = logging.getLogger(__name__)


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def resolve(workers: int | str, device: torch.device, backend: str = "optuna") -> int:
    """The number of processes to search with: ``auto`` is every usable core on the CPU (at most
    :data:`MAX_AUTO`; the environment variable :data:`ENV` overrides it) and 1 on a GPU. The
    Ray backend runs its own processes: 1 here."""
    if backend != "optuna":
        return 1
    if workers != "auto":
        return int(workers)
    if os.environ.get(ENV):
        value = os.environ[ENV]
        if not value.isdigit() or int(value) < 1:
            raise NasStudentError(f"{ENV}={value!r}: expected a whole number >= 1")
        return int(value)
    return min(cores(), MAX_AUTO) if device.type == "cpu" else 1


def threads_per_worker(n: int) -> int:
    return max(1, cores() // n)


def start_method(device: torch.device) -> str:
    """fork on the CPU under Linux (the helpers share the search's context), else spawn."""
    return "fork" if device.type == "cpu" and sys.platform == "linux" else "spawn"


class _Spawned:
    """A helper in a fresh interpreter: ``nas-student worker RUN`` (the API of a forked one)."""

    def __init__(self, run_dir: Path, threads: int) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        cmd = [sys.executable, "-m", "nas_student.cli", "worker", str(run_dir)]
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,  # the search shows progress
                                     preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        self.pid = self.proc.pid

    def is_alive(self) -> bool:
        return self.proc.poll() is None

    def join(self, timeout: float | None = None) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout)

    def kill(self) -> None:
        self.proc.kill()

    @property
    def exitcode(self) -> int | None:
        return self.proc.returncode


@dataclass
class Pool:
    """The helpers of one search (none for ``--workers 1``)."""

    procs: list[mp.process.BaseProcess | _Spawned] = field(default_factory=list)
    threads_before: int = 0

    def stop(self, failed: bool) -> None:
        """Wait for the helpers. After a failure of the search process they are interrupted (they
        fail their trials as interrupted, as the search process does), then killed if they hang."""
        if failed:
            for p in self.procs:
                if p.is_alive() and p.pid is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(p.pid, signal.SIGINT)
        for p in self.procs:
            p.join(STOP_S)
            if p.is_alive():
                p.kill()
                p.join()
            elif p.exitcode and not failed:
                _log.warning("worker process %s stopped with exit code %s; the others took over its trials",
                             p.pid, p.exitcode)
        if self.threads_before:
            torch.set_num_threads(self.threads_before)


def start(ctx: SearchContext, run_dir: Path, n: int) -> Pool:
    """Start ``n - 1`` helpers beside this process (which works too) and give each process its
    share of the cores as torch threads."""
    if n <= 1:
        return Pool()
    threads = threads_per_worker(n)
    pool = Pool(threads_before=torch.get_num_threads())
    torch.set_num_threads(threads)
    fork = start_method(ctx.device) == "fork"
    if fork:
        _preload()
    for _ in range(n - 1):
        if fork:
            p = mp.get_context("fork").Process(target=_forked, args=(ctx, run_dir, threads, os.getpid()))
            p.start()
            pool.procs.append(p)
        else:
            pool.procs.append(_Spawned(run_dir, threads))
    return pool


@contextlib.contextmanager
def running(ctx: SearchContext, run_dir: Path, n: int) -> Iterator[Pool]:
    """The helpers for the time of the block; stopped (interrupted on an error) when it ends."""
    pool = start(ctx, run_dir, n)
    try:
        yield pool
    except BaseException:
        pool.stop(failed=True)
        raise
    pool.stop(failed=False)


def _preload() -> None:
    """Import once, before forking, what every helper's first trial would import for itself:
    torch's optimisers import torch._dynamo on their first step (about 2 s of a CPU core)."""
    import torch._dynamo  # noqa: F401

    from nas_student import storage  # noqa: F401
    from nas_student.search import local  # noqa: F401


def _forked(ctx: SearchContext, run_dir: Path, threads: int, parent: int) -> None:
    """A forked helper: the context is the search's own; the study gets its own connection."""
    from nas_student import storage
    from nas_student.search import local
    from nas_student.search.study import make_sampler

    _as_helper(threads, parent)
    _exit_quietly(lambda: local.optimize(
        storage.load_study(run_dir, sampler=make_sampler(ctx.cfg)), ctx, run_dir))


def _as_helper(threads: int, parent: int) -> None:
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)
    torch.set_num_threads(threads)
    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__  # not the parent's progress display


def _exit_quietly(work) -> None:  # type: ignore[no-untyped-def]
    """Run the helper's work; its errors are one line on stderr and an exit code (the search
    process reports the run's outcome)."""
    try:
        work()
    except NasStudentError as e:
        print(f"worker {os.getpid()}: error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


def _die_with_parent() -> None:
    """Linux: the kernel kills this helper when the search process dies, even by SIGKILL."""
    if sys.platform != "linux":
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
