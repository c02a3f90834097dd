"""The policy file: the playbook's tables load into typed objects; malformed files say what is wrong."""

from dataclasses import replace
from datetime import timedelta
from importlib import resources
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from akko_dr.errors import PolicyError
from akko_dr.policy import DEFAULT_POLICY, format_duration, load_policy, parse_deadlines, parse_duration


def test_the_playbook_tables_load() -> None:
    policy = load_policy()
    assert policy.version == "2026.04"
    assert {k.title: (k.rto, k.rpo) for k in policy.classes.values()} == {
        "Critical data": (timedelta(hours=2), timedelta(hours=1)),
        "Control plane": (timedelta(hours=4), timedelta(hours=4)),
        "Observability": (timedelta(hours=12), timedelta(hours=24)),
        "Full cluster rebuild": (timedelta(hours=24), timedelta(hours=4)),
    }
    assert len(policy.jobs) == 6
    assert policy.jobs["akko-pg-data-backup"].retention.cold == timedelta(days=180)
    assert len(policy.scope) == 10


def test_job_intervals_come_from_the_cron_expressions() -> None:
    jobs = load_policy().jobs
    assert jobs["akko-pg-backup"].interval() == timedelta(hours=4)
    assert jobs["akko-pg-data-backup"].interval() == timedelta(hours=2)
    assert jobs["akko-keycloak-realm-export"].interval() == timedelta(days=1)
    assert jobs["akko-minio-replicate"].continuous


def test_a_class_is_found_by_title_or_key() -> None:
    policy = load_policy()
    assert policy.klass("Control plane") is policy.klass("control-plane")
    with pytest.raises(PolicyError, match="no class named 'Gold'"):
        policy.klass("Gold")


@pytest.mark.parametrize(("text", "seconds"),
                         [("2h", 7200), ("14d", 1_209_600), ("20m", 1200), ("1.5h", 5400)])
def test_durations_parse(text: str, seconds: int) -> None:
    assert parse_duration(text, "k").total_seconds() == seconds


def test_durations_print_for_humans() -> None:
    assert format_duration(timedelta(hours=2)) == "2h"
    assert format_duration(5400) == "1h30m"
    assert format_duration(12.34) == "12.3s"


def _write_broken(tmp_path: Path, mutate) -> Path:
    raw = yaml.safe_load(resources.files("akko_dr.policies").joinpath(DEFAULT_POLICY).read_text())
    mutate(raw)
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda r: r["classes"]["critical-data"].update(rto="two hours"),
     r"classes\.critical-data\.rto: expected a duration like '2h' or '14d', got 'two hours'"),
    (lambda r: r["jobs"]["akko-pg-backup"].update(schedule="every 4 hours"),
     r"jobs\.akko-pg-backup\.schedule: expected a cron expression or 'continuous'"),
    (lambda r: r["databases"]["aden"].update({"class": "gold"}),
     r"databases\.aden\.class: 'gold' is not defined"),
    (lambda r: r["scope"][0].pop("jobs"), r"scope\[0\]\.jobs: missing \(expected list\)"),
    (lambda r: r.pop("storage"), r"storage: missing \(expected dict\)"),
    (lambda r: r["storage"].update(dump_format="tar"),
     r"storage\.dump_format: expected one of plain, custom, got 'tar'"),
])
def test_a_malformed_policy_names_the_key_and_what_was_expected(tmp_path: Path, mutate, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        load_policy(_write_broken(tmp_path, mutate))


def test_an_unreadable_or_invalid_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("classes: [unclosed")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(bad)


def test_live_deadlines_come_from_the_policy_and_reach_the_adapters(tmp_path) -> None:
    """Issue 9: how long a live drill waits for a rollout, a Job and a Velero restore is the policy's."""
    from akko_dr.targetfile import load_target_file, open_live

    policy = load_policy()
    assert {k: d.total_seconds() for k, d in policy.deadlines.items()} == {
        "rollout": 300, "job": 3600, "restore": 3600, "object_store": 30}
    path = tmp_path / "target.yaml"
    path.write_text("kube: {namespace: akko}\ns3: {endpoint: 'http://127.0.0.1:9'}\n")
    faster = replace(policy, deadlines={"rollout": timedelta(seconds=7), "job": timedelta(seconds=8),
                                        "restore": timedelta(seconds=9),
                                        "object_store": timedelta(seconds=4)})
    target = open_live(faster, load_target_file(path), allow_destructive=False, api=client.ApiClient())
    assert (target.orchestrator.deadline, target.jobs.deadline, target.velero.deadline) == (7, 8, 9)
    config = target.store.client.meta.config
    assert (target.store.timeout, config.read_timeout, config.connect_timeout) == (4, 4, 3)


def test_an_unknown_deadline_is_named() -> None:


    with pytest.raises(PolicyError, match=r"cadence\.deadlines: expected a mapping of rollout, job"):
        parse_deadlines({"rolout": "5m"})
