"""Drill 2 on a live target: the disaster and the rebuild on a rehearsal platform of the drill's own
(the target file's ``scratch_platform``), never on the source. Its PostgreSQL server cannot be switched
off over SQL, so "lost" means each database set aside under a new name (kept until sign-off) and the hot
buckets emptied; the new, empty server the rebuild provisions is the file's ``rebuild_postgres``."""

from __future__ import annotations

from akko_dr.adapters.postgres import PostgresDatabase
from akko_dr.adapters.s3 import S3ObjectStore
from akko_dr.errors import DrillError
from akko_dr.policy import Policy


class RehearsalPlatform:
    """The Platform port over a scratch cluster's PostgreSQL, its rebuild server and its object store."""

    def __init__(self, policy: Policy, db: PostgresDatabase, rebuild: PostgresDatabase, store: S3ObjectStore,
                 run_id: str) -> None:
        self.policy, self.db, self.rebuild, self.store, self.run_id = policy, db, rebuild, store, run_id
        self.current = db  # the server the services write to: the rebuild server once provisioned
        self.kept: list[str] = []

    def lose_platform(self) -> list[str]:
        """Every database of the policy set aside (renamed, kept), every hot bucket emptied."""
        lost = []
        for name in self.policy.databases:
            if self.db.exists(name):
                kept = f"{name}__lost_{self.run_id}"
                self.db.rename(name, kept)
                self.kept.append(f"database {kept} on {self.db!r}")
                lost.append(f"database {name} lost (set aside as {kept}, kept until sign-off)")
        for bucket in self.policy.storage.hot_buckets:
            objects = self.store.list(bucket)
            for obj in objects:
                self.store.delete(bucket, obj.key)
            lost.append(f"hot bucket {bucket} emptied ({len(objects)} objects)")
        return lost

    def provision_platform(self) -> PostgresDatabase:
        """The rebuild server, refused unless it holds none of the platform's databases."""
        if present := [name for name in self.policy.databases if self.rebuild.exists(name)]:
            raise DrillError(f"the rebuild server {self.rebuild!r} already holds {', '.join(present)}: "
                             "the rebuild needs a new, empty server")
        self.current = self.rebuild
        return self.rebuild

    def kept_for_signoff(self) -> list[str]:
        return list(self.kept)
