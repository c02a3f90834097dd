"""PostgreSQL faults: the scratch database's disk fills up, the server's connection limit is reached.

Disk full is real: the scratch database is created in a tablespace on a tmpfs mounted for the fault and
shrunk to what the empty database takes, so the restore's writes fail with ENOSPC. Mounting needs root;
without it the case is not applicable here (named, never passed).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import psycopg
from psycopg import sql as q

from akko_dr.adapters.postgres import PostgresDatabase
from akko_dr.errors import NotApplicable
from akko_dr.targets import Target

TABLESPACE = "akko_dr_fault_full_disk"
HEADROOM_KB = 64  # what is left on the tmpfs once the empty scratch database is on it
MAX_CONNECTIONS_HELD = 1000  # a bound on the connections the limit fault opens


class _ScratchOnSmallDisk(PostgresDatabase):
    """The server, whose new databases go on a tablespace whose disk is nearly full."""

    def __init__(self, inner: PostgresDatabase, mount: Path) -> None:
        super().__init__(inner._dsn, inner._bin, inner._admin)
        self.mount = mount

    def create(self, name: str) -> None:
        self._admin_execute(q.SQL("CREATE DATABASE {} TABLESPACE {}").format(
            q.Identifier(name), q.Identifier(TABLESPACE)))
        used_kb = int(subprocess.run(["du", "-sk", str(self.mount)], capture_output=True, text=True,
                                     check=True).stdout.split()[0])
        _mount(self.mount, f"remount,size={used_kb + HEADROOM_KB}k")


def _mount(path: Path, options: str) -> None:
    args = ["mount", "-o", options, path] if options.startswith("remount") else [
        "mount", "-t", "tmpfs", "-o", options, "tmpfs", path]
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise NotApplicable(f"disk-full fault needs a tmpfs mount (root): {proc.stderr.strip() or 'refused'}")


@dataclass
class FullScratchDisk:
    """The restore target's disk fills up while the dump is replayed into the scratch database."""

    server_user: str
    mounts: list[tuple[PostgresDatabase, Path]] = field(default_factory=list)

    def apply(self, target: Target, database: str) -> Target:
        mount = Path(tempfile.mkdtemp(prefix="akko-dr-full-disk-"))
        mount.chmod(0o755)
        _mount(mount, "size=64m,mode=0700")
        shutil.chown(mount, self.server_user, self.server_user)
        self.mounts.append((target.db, mount))
        target.db.execute("postgres", q.SQL("CREATE TABLESPACE {} LOCATION {}").format(
            q.Identifier(TABLESPACE), q.Literal(str(mount))).as_string(None))
        return replace(target, db=_ScratchOnSmallDisk(target.db, mount))

    def clear(self) -> None:
        while self.mounts:
            db, mount = self.mounts.pop()
            db.execute("postgres", f'DROP TABLESPACE IF EXISTS "{TABLESPACE}"')
            subprocess.run(["umount", str(mount)], check=True)
            mount.rmdir()


class _LimitReachedAtRestore(PostgresDatabase):
    """The server, whose every connection slot is taken (by ``fill``) as the restore starts."""

    def __init__(self, inner: PostgresDatabase, fill: callable) -> None:
        super().__init__(inner._dsn, inner._bin, inner._admin)
        self._fill = fill

    def drop(self, name: str) -> None:
        self._fill()
        super().drop(name)


@dataclass
class ConnectionLimit:
    """Other clients hold every connection the server allows when the drill needs one."""

    held: list[psycopg.Connection] = field(default_factory=list)

    def apply(self, target: Target, database: str) -> Target:
        dsn = target.db.dsn("postgres")
        return replace(target, db=_LimitReachedAtRestore(target.db, lambda: self._fill(dsn)))

    def _fill(self, dsn: str) -> None:
        while len(self.held) < MAX_CONNECTIONS_HELD:
            try:
                self.held.append(psycopg.connect(dsn, autocommit=True, connect_timeout=5))
            except psycopg.OperationalError as err:
                if "too many clients" in str(err):
                    return
                raise
        raise RuntimeError(f"the server took {MAX_CONNECTIONS_HELD} connections without reaching its limit")

    def clear(self) -> None:
        while self.held:
            self.held.pop().close()
