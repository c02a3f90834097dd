"""Drill 2 on a live target runs on the target file's scratch platform, never on the source: the file is
refused when any part of that platform is the source's, and the platform is lost by setting each database
aside (kept until sign-off), then rebuilt only on a server that holds none of them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from akko_dr.adapters.rehearsal_platform import RehearsalPlatform
from akko_dr.errors import DrillError, PolicyError
from akko_dr.policy import Policy
from akko_dr.ports import StoredObject
from akko_dr.targetfile import load_target_file

SOURCE = """
kube: {kubeconfig: /k/config, context: prod, namespace: akko}
s3: {endpoint: "http://minio.prod:9000"}
postgres: {host: pg.prod, port: 5432}
"""
SCRATCH = {"kube": "{kubeconfig: /k/config, context: dr, namespace: akko}",
           "s3": '{endpoint: "http://minio.dr:9000"}', "postgres": "{host: pg.dr}",
           "rebuild_postgres": "{host: pg-rebuilt.dr}"}


def _file(tmp_path: Path, **parts: str) -> Path:
    scratch = {**SCRATCH, **parts}
    body = "".join(f"  {k}: {v}\n" for k, v in scratch.items() if v)
    path = tmp_path / "target.yaml"
    path.write_text(SOURCE + "scratch_platform:\n" + body)
    return path


def test_a_scratch_platform_of_its_own_is_read_with_its_rebuild_server(tmp_path: Path) -> None:
    scratch = load_target_file(_file(tmp_path)).scratch
    read = (scratch.kube_context, scratch.pg_host, scratch.rebuild.pg_host)
    assert read == ("dr", "pg.dr", "pg-rebuilt.dr")


@pytest.mark.parametrize(("part", "value", "named"), [
    ("kube", "{kubeconfig: /k/config, context: prod, namespace: akko}", "its Kubernetes namespace"),
    ("postgres", "{host: pg.prod}", "its PostgreSQL server"),
    ("rebuild_postgres", "{host: pg.prod}", "its rebuild server"),
    ("s3", '{endpoint: "http://minio.prod:9000"}', "its object store"),
])
def test_a_scratch_platform_sharing_a_part_with_the_source_is_refused(tmp_path: Path, part: str, value: str,
                                                                      named: str) -> None:
    with pytest.raises(PolicyError, match=rf"scratch_platform: .*{named}.* is the source's"):
        load_target_file(_file(tmp_path, **{part: value}))


def test_a_scratch_platform_without_a_new_rebuild_server_or_in_production_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="rebuild_postgres: expected the new, empty server"):
        load_target_file(_file(tmp_path, rebuild_postgres=""))
    with pytest.raises(PolicyError, match=r"rebuild_postgres: pg\.dr:5432 is the server the drill loses"):
        load_target_file(_file(tmp_path, rebuild_postgres="{host: pg.dr}"))
    with pytest.raises(PolicyError, match="a scratch platform is never production"):
        load_target_file(_file(tmp_path, production="true"))


class FakeServer:
    """A PostgreSQL server's database names (the Database port's part the platform uses)."""

    def __init__(self, names: set[str]) -> None:
        self.names = set(names)

    def exists(self, name: str) -> bool:
        return name in self.names

    def rename(self, old: str, new: str) -> None:
        self.names.remove(old)
        self.names.add(new)


class FakeStore:
    def __init__(self, objects: dict[str, list[str]]) -> None:
        self.objects = objects

    def list(self, bucket: str) -> list[StoredObject]:
        return [StoredObject(bucket, key, 1, datetime.now(UTC)) for key in self.objects.get(bucket, [])]

    def delete(self, bucket: str, key: str) -> None:
        self.objects[bucket].remove(key)


def test_losing_the_scratch_platform_sets_its_databases_aside_and_empties_hot_buckets(policy: Policy) -> None:
    server = FakeServer(set(policy.databases))
    hot = policy.storage.hot_buckets[0]
    store = FakeStore({hot: ["a", "b"], policy.storage.backups_bucket: ["dump"]})
    platform = RehearsalPlatform(policy, server, FakeServer(set()), store, "run1")
    lost = platform.lose_platform()
    assert server.names == {f"{name}__lost_run1" for name in policy.databases}
    assert len(platform.kept_for_signoff()) == len(policy.databases)
    assert f"hot bucket {hot} emptied (2 objects)" in lost and store.objects[policy.storage.backups_bucket]


def test_the_rebuild_refuses_a_server_that_already_holds_a_platform_database(policy: Policy) -> None:
    platform = RehearsalPlatform(policy, FakeServer(set()), FakeServer({"airflow"}), FakeStore({}), "run1")
    with pytest.raises(DrillError, match="already holds airflow: the rebuild needs a new, empty server"):
        platform.provision_platform()
    assert platform.current is platform.db
