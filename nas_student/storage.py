"""Where a run's study lives, in one place: SQLite in the run folder (the default), any
SQLAlchemy URL (``postgresql://...``), or an Optuna journal file (``journal:PATH``).

Many processes may write one study (``nas-student worker RUN``, Ray trials). Two things make
that safe on every storage:

* SQLite is opened so that every transaction takes the write lock up front (``BEGIN
  IMMEDIATE``): SQLite's busy timeout then queues writers instead of failing a reader that
  wants to become a writer with "database is locked".
* :func:`claim_lock` serialises the one step that must be atomic across workers, "count the
  finished and running trials, then ask for a new one", so a study never gets more trials than
  asked: a PostgreSQL advisory lock, or a file lock beside a SQLite or journal file.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage

from nas_student.errors import NasStudentError

JOURNAL = "journal:"


def default_url(run_dir: Path) -> str:
    return f"sqlite:///{(run_dir / 'study.db').resolve()}"


def _url(run_dir: Path, spec: str | None) -> str:
    return default_url(run_dir) if spec is None else spec


def _immediate_transactions(engine: object) -> None:
    """pysqlite: let SQLAlchemy emit ``BEGIN IMMEDIATE`` itself (the recipe in SQLAlchemy's
    SQLite dialect notes), so concurrent writers wait on the busy timeout instead of failing."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin_immediate(conn):  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened before the listeners (schema creation) are dropped


def open_storage(run_dir: Path, spec: str | None = None, attempts: int = 10) -> BaseStorage:
    """The run's storage. ``spec`` None is SQLite in ``run_dir``. Two processes creating a new
    SQLite file at once race to create the schema; the loser retries."""
    url = _url(run_dir, spec)
    if url.startswith(JOURNAL):
        from optuna.storages.journal import JournalFileBackend

        path = Path(url[len(JOURNAL):]).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    import sqlalchemy.exc

    sqlite = url.startswith("sqlite")
    kwargs = {"connect_args": {"timeout": 120}} if sqlite else {"pool_pre_ping": True}
    for attempt in range(attempts):
        try:
            storage = RDBStorage(url, engine_kwargs=kwargs)
            if sqlite:
                _immediate_transactions(storage.engine)
            return storage
        except ImportError as e:
            raise NasStudentError(f"storage {_redact(url)}: no database driver ({e}); for PostgreSQL "
                                  "install psycopg[binary]") from None
        except sqlalchemy.exc.OperationalError as e:
            if attempt == attempts - 1 or not sqlite:
                raise NasStudentError(f"storage {_redact(url)}: cannot open it "
                                      f"({' '.join(str(e.orig).split())[:200]})") from None
        except sqlalchemy.exc.SQLAlchemyError:
            if attempt == attempts - 1:
                raise
        time.sleep(0.1 * (attempt + 1))
    raise AssertionError("unreachable")


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    head, sep, tail = url.partition("@")
    if not sep or "://" not in head:
        return url
    scheme, _, user = head.partition("://")
    return f"{scheme}://{user.split(':')[0]}@{tail}"


def is_run(path: Path) -> bool:
    """A run folder: its study is here (study.db) or its run.json says where."""
    return (path / "study.db").exists() or (path / "run.json").exists()


def run_spec(run_dir: Path) -> str | None:
    """The storage a run was searched in, as written to its ``run.json``."""
    info = run_dir / "run.json"
    if not info.exists():
        return None
    return json.loads(info.read_text()).get("execution", {}).get("storage")


def load_study(run_dir: Path, sampler: optuna.samplers.BaseSampler | None = None) -> optuna.Study:
    """Open an existing run's study (read or resume), wherever its storage is."""
    spec = run_spec(run_dir)
    if spec is None:
        if not (run_dir / "study.db").exists():
            raise NasStudentError(f"{run_dir}: no study here (expected {run_dir / 'study.db'})")
        storage = open_storage(run_dir)
        names = optuna.get_all_study_names(storage)
        if len(names) != 1:
            raise NasStudentError(f"{run_dir}/study.db: expected one study, found {len(names)}")
        name = names[0]
    else:
        storage = open_storage(run_dir, spec)
        name = json.loads((run_dir / "run.json").read_text()).get("run") or run_dir.name
        if name not in optuna.get_all_study_names(storage):
            raise NasStudentError(f"{run_dir}: no study {name!r} in {_redact(spec)}")
    return optuna.load_study(study_name=name, storage=storage, sampler=sampler)


def of(study: optuna.Study) -> BaseStorage:
    """The storage under ``study`` (Optuna wraps an RDB storage in a read cache)."""
    inner = study._storage
    backend = getattr(inner, "_backend", None)  # a journal's _backend is its file, not a storage
    return backend if isinstance(backend, BaseStorage) else inner


@contextmanager
def claim_lock(study: optuna.Study, run_dir: Path, spec: str | None) -> Iterator[bool]:
    """Hold the lock under which a worker counts trials and asks for a new one; yields whether
    the lock is exclusive (False only where the platform has no file locks)."""
    url = _url(run_dir, spec)
    if url.startswith("postgresql"):
        key = int.from_bytes(hashlib.sha1(study.study_name.encode()).digest()[:8], "big", signed=True)
        with of(study).engine.connect() as conn:  # type: ignore[attr-defined]
            conn.exec_driver_sql(f"SELECT pg_advisory_lock({key})")
            try:
                yield True
            finally:
                conn.exec_driver_sql(f"SELECT pg_advisory_unlock({key})")
        return
    if url.startswith(JOURNAL):
        lock_file = Path(url[len(JOURNAL):] + ".claim")
    elif url.startswith("sqlite:///"):
        lock_file = Path(url[len("sqlite:///"):] + ".claim")
    else:  # another database: workers must share the run folder
        lock_file = run_dir / ".claim"
    with file_lock(lock_file) as exclusive:
        yield exclusive


@contextmanager
def file_lock(path: Path) -> Iterator[bool]:
    """Hold an exclusive lock on ``path``; yields False where there are no file locks."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock
        yield False
        return
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield True
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
