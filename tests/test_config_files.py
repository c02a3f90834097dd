"""Policy, target and answers files: a malformed one is refused before anything runs, naming the file, the
key and the expected form. Property-based tests (hypothesis) for the parsers."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from akko_dr.attestation import load_answers
from akko_dr.errors import PolicyError
from akko_dr.policy import DEFAULT_POLICY, load_policy, parse_duration
from akko_dr.targetfile import load_target_file

ROOT = Path(__file__).resolve().parents[1]
FILES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _policy_raw() -> dict:
    return yaml.safe_load(resources.files("akko_dr.policies").joinpath(DEFAULT_POLICY).read_text())


def _write(tmp_path: Path, raw: object, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw) if not isinstance(raw, str) else raw)
    return path


POLICY_CASES = [
    ("unknown top-level key", lambda r: r.update(clases={}), r"clases: unknown key \(expected one of name,"),
    ("unknown key in a class", lambda r: r["classes"]["critical-data"].update(rtoo="2h"),
     r"classes\.critical-data\.rtoo: unknown key \(expected one of title, rto, rpo, scenario\)"),
    ("unknown key in storage", lambda r: r["storage"].update(backup_bucket="x"),
     r"storage\.backup_bucket: unknown key"),
    ("unknown key in cadence", lambda r: r["cadence"].update(drill_intervall="92d"),
     r"cadence\.drill_intervall: unknown key"),
    ("zero RTO", lambda r: r["classes"]["critical-data"].update(rto="0h"),
     r"classes\.critical-data\.rto: expected a positive duration like '2h' or '14d', got '0h'"),
    ("negative RPO", lambda r: r["classes"]["control-plane"].update(rpo="-4h"),
     r"classes\.control-plane\.rpo: expected a duration like '2h' or '14d', got '-4h'"),
    ("zero retention", lambda r: r["jobs"]["akko-pg-backup"]["retention"].update(cold="0d"),
     r"jobs\.akko-pg-backup\.retention\.cold: expected a positive duration"),
    ("RTO as a number", lambda r: r["classes"]["critical-data"].update(rto=2),
     r"classes\.critical-data\.rto: expected str, got int 2"),
    ("worm as a word", lambda r: r["jobs"]["akko-minio-replicate"]["retention"].update(worm="yes"),
     r"jobs\.akko-minio-replicate\.retention\.worm: expected true or false, got 'yes'"),
    ("a class as a list", lambda r: r["classes"].update({"critical-data": ["2h"]}),
     r"classes\.critical-data: expected a mapping, got list"),
    ("hot buckets of numbers", lambda r: r["storage"].update(hot_buckets=[1, 2]),
     r"storage\.hot_buckets: expected a list of bucket names"),
    ("a cron of six fields", lambda r: r["jobs"]["akko-pg-backup"].update(schedule="0 0 */4 * * *"),
     r"jobs\.akko-pg-backup\.schedule: expected a cron expression or 'continuous' \(five fields"),
    ("a cron out of range", lambda r: r["jobs"]["akko-pg-backup"].update(schedule="61 * * * *"),
     r"jobs\.akko-pg-backup\.schedule: expected a cron expression"),
    ("a zero deadline", lambda r: r["cadence"]["deadlines"].update(job="0s"),
     r"cadence\.deadlines\.job: expected a positive duration"),
    ("drills as a list", lambda r: r.update(drills=["drill-1"]), r"drills: expected a mapping of drill keys"),
]


@pytest.mark.parametrize(("case", "mutate", "message"), POLICY_CASES, ids=[c[0] for c in POLICY_CASES])
def test_a_malformed_policy_is_refused_naming_file_key_and_form(tmp_path: Path, case: str, mutate,
                                                                message: str) -> None:
    raw = _policy_raw()
    mutate(raw)
    path = _write(tmp_path, raw)
    with pytest.raises(PolicyError, match=rf"^{path}: {message}"):
        load_policy(path)


def test_malformed_policy_yaml_names_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "classes: {critical-data: [unclosed\n")
    with pytest.raises(PolicyError, match=rf"^{path}: not valid YAML \(.*line 1"):
        load_policy(path)


TARGET_CASES = [
    ("not YAML", "kube: {namespace: [akko\n", r"not valid YAML at line 2, column 1"),
    ("a list", "- kube\n", r"expected a mapping at the top level"),
    ("unknown section", "kubernetes: {namespace: akko}\n",
     r"kubernetes: unknown key \(expected one of kube,"),
    ("unknown key", "s3: {endpiont: http://x}\n", r"s3\.endpiont: unknown key \(expected one of endpoint,"),
    ("port as a word", "postgres: {host: db, port: five}\n", r"postgres\.port: expected a port number"),
    ("port out of range", "postgres: {host: db, port: 70000}\n",
     r"postgres\.port: expected a port number \(1-65535\), got int 70000"),
    ("production as a word", "production: maybe\n", r"production: expected true or false, got str"),
    ("a section as a string", "kube: prod\n", r"kube: expected a mapping, got str"),
    ("a zero probe deadline", "probes: {deadline: 0s}\n", r"probes\.deadline: expected a positive duration"),
    ("a password in the file", "postgres: {host: db, password: hunter2}\n",
     r"postgres: password: credentials never go in the target file"),
    ("a Keycloak admin password in the file", "keycloak: {url: http://k, realm: akko, admin_user: a, "
     "admin_password: hunter2}\n", r"keycloak: admin_password: credentials never go in the target file"),
    ("a Keycloak admin API without its realm", "keycloak: {url: http://k}\n",
     r"keycloak: expected realm and admin_user with the url"),
    ("a rehearsal attacker on production", "production: true\n"
     "keycloak: {url: http://k, realm: akko, admin_user: a}\ndrill_3: {rehearsal_attacker: true}\n",
     r"drill_3\.rehearsal_attacker: never on a production target"),
    ("a rehearsal attacker without Keycloak", "drill_3: {rehearsal_attacker: true}\n",
     r"drill_3\.rehearsal_attacker: the attacker signs in to Keycloak"),
    ("a replica without its server", "s3: {replica: {region: eu}}\n",
     r"s3\.replica: expected the endpoint of the replica's server"),
    ("a replica secret in the file", "s3: {replica: {endpoint: http://r, secret_key: hunter2}}\n",
     r"s3\.replica: secret_key: credentials never go in the target file"),
    ("an unknown Drill 3 key", "drill_3: {attacker: yes}\n", r"drill_3\.attacker: unknown key"),
]


ANSWER_CASES = [
    ("not YAML", "k: {who: [A\n", r"cannot read attestation answers"),
    ("a list", "- who\n", r"expected a mapping of attestation keys"),
    ("no observation", "k: {who: Ann}\n", r"k: expected 'who' and 'observed'"),
    ("unknown key", "k: {who: Ann, observed: x, roel: CISO}\n",
     r"k\.roel: unknown key \(expected one of who, role, when, observed\)"),
    ("who as a number", "k: {who: 42, observed: x}\n", r"k\.who: expected a string, got int"),
    ("when not a time", "k: {who: Ann, observed: x, when: yesterday}\n",
     r"k\.when: expected a date-time like '2026-11-27T10:00:00', got 'yesterday'"),
]


FILE_CASES = [("target.yaml", load_target_file, *c) for c in TARGET_CASES] + [
    ("answers.yaml", load_answers, *c) for c in ANSWER_CASES]


@pytest.mark.parametrize(("name", "load", "case", "text", "message"), FILE_CASES,
                         ids=[f"{c[0]}: {c[2]}" for c in FILE_CASES])
def test_a_malformed_target_or_answers_file_is_refused_naming_file_key_and_form(
        tmp_path: Path, name: str, load, case: str, text: str, message: str) -> None:
    path = _write(tmp_path, text, name)
    with pytest.raises(PolicyError, match=rf"^{path}: {message}") as err:
        load(path)
    assert "hunter2" not in str(err.value), "a credential value was echoed"


@pytest.mark.parametrize("target, option, name, text", [
    ("sandbox", "--policy", "policy.yaml", "name: x\nclases: {}\n"),
    ("live", "--target-file", "target.yaml", "s3: {endpiont: http://x}\n"),
    ("sandbox", "--answers", "answers.yaml", "k: {who: Ann}\n")])
def test_a_bad_input_file_stops_the_drill_before_anything_runs(tmp_path: Path, target: str, option: str,
                                                               name: str, text: str) -> None:
    path = _write(tmp_path, text, name)
    argv = ["drill", "--target", target, "--evidence-dir", str(tmp_path / "ev"), option, str(path)]
    proc = subprocess.run([sys.executable, "-m", "akko_dr.cli", *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, f"exit code: expected 2 (bad input), got {proc.returncode}: {out[-1500:]}"
    assert f"{path}: " in out, f"the error does not name {path}: {out[-1500:]}"
    assert "[  1/" not in out and not (tmp_path / "ev" / "latest").exists(), "a scenario ran"


# -- property-based tests of the parsers ----------------------------------------------------------------
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@given(st.integers(min_value=1, max_value=10**6), st.sampled_from(sorted(UNITS)))
def test_every_positive_duration_parses_to_its_seconds(n: int, unit: str) -> None:
    assert parse_duration(f"{n}{unit}", "k") == timedelta(seconds=n * UNITS[unit])


@given(st.one_of(st.text(max_size=12), st.integers(), st.floats(allow_nan=True), st.none(), st.booleans()))
def test_anything_else_is_a_duration_or_a_named_refusal(value: object) -> None:
    try:
        parsed = parse_duration(value, "cadence.x")
    except PolicyError as err:
        assert str(err).startswith("cadence.x: expected a "), str(err)
    else:
        assert isinstance(value, str) and parsed > timedelta(0)


KEYS = st.text(st.characters(codec="ascii", categories=("L", "N")), min_size=1, max_size=10)
YAML_VALUES = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8)),
                           lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(KEYS, inner, max_size=3),
                           max_leaves=8)


@FILES
@given(st.sampled_from(["classes", "jobs", "databases", "scope", "storage", "cadence", "drills"]),
       YAML_VALUES)
def test_any_value_in_any_policy_section_loads_or_is_refused_with_file_and_key(tmp_path: Path, section: str,
                                                                                value: object) -> None:
    raw = _policy_raw()
    raw[section] = value
    path = _write(tmp_path, raw)
    try:
        load_policy(path)
    except PolicyError as err:
        assert str(err).startswith(f"{path}: ") and "\n" not in str(err), str(err)


TARGET_SECTIONS = ["kube", "s3", "postgres", "probes", "production", "keycloak", "segregated_postgres",
                   "logs", "drill_3", "other"]


@FILES
@given(st.dictionaries(st.sampled_from(TARGET_SECTIONS), YAML_VALUES, max_size=4))
def test_any_target_file_loads_or_is_refused_with_file_and_key(tmp_path: Path, raw: dict) -> None:
    path = _write(tmp_path, raw, "target.yaml")
    try:
        load_target_file(path)
    except PolicyError as err:
        assert str(err).startswith(f"{path}: ") and "\n" not in str(err), str(err)


DATABASES = st.text(st.characters(codec="utf-8", exclude_characters="/\x00"), min_size=1, max_size=20)
TIMES = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2999, 12, 31), timezones=st.just(UTC))


class _Listing:
    """An object store that only lists and reads (what latest_backup needs), in memory."""

    def __init__(self, keys: list[str]) -> None:
        from akko_dr.ports import StoredObject

        self.objects = [StoredObject("b", k, 1, datetime.now(UTC)) for k in keys]

    def list(self, bucket: str, prefix: str = "") -> list:
        return [o for o in self.objects if o.key.startswith(prefix)]


@given(DATABASES, st.lists(TIMES, min_size=1, max_size=5, unique_by=lambda t: t.replace(microsecond=0)),
       st.sampled_from(["", ".bak", ".tmp", "x"]))
def test_the_newest_dump_name_parses_back_and_near_names_are_ignored(database: str, times: list[datetime],
                                                                      noise: str) -> None:
    from dataclasses import replace

    from akko_dr.backup import dump_key, latest_backup

    policy = load_policy()
    policy = replace(policy, databases={**policy.databases, database: policy.databases["aden"]})
    keys = [dump_key(policy, database, t) for t in times]
    decoys = [k + noise for k in keys if noise] + [dump_key(policy, database + "_extra", max(times))]
    newest = latest_backup(policy, _Listing(keys + decoys), database)
    assert newest.key == dump_key(policy, database, max(times))
    assert newest.taken_at == max(times).replace(microsecond=0)
