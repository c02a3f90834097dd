"""Every manifest in deploy/ against the Kubernetes schemas (kubernetes-validate, strict: an unknown or
misspelt field fails), and the nightly CronJob against the image, the target file and the CLI."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from akko_dr import nightly
from akko_dr.policy import load_policy
from akko_dr.targetfile import load_target_file

CHECKOUT = Path(__file__).resolve().parent.parent
DEPLOY = CHECKOUT / "deploy"
KUBERNETES = kubernetes_validate.latest_version()  # the newest schemas the package bundles
SECRET_LIKE = re.compile(r"KEY|PASSWORD|SECRET|TOKEN", re.I)


def _documents() -> list[tuple[str, dict[str, Any]]]:
    return [(f"{path.name}#{i}", doc) for path in sorted(DEPLOY.glob("*.yaml"))
            for i, doc in enumerate(yaml.safe_load_all(path.read_text())) if doc is not None]


def _one(kind: str) -> dict[str, Any]:
    [doc] = [doc for _, doc in _documents() if doc["kind"] == kind]
    return doc


def _schema_errors(doc: dict[str, Any]) -> str | None:
    try:
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)
    except kubernetes_validate.ValidationError as err:
        return f"{'.'.join(map(str, err.path)) or '(top)'}: {err.message}"
    except kubernetes_validate.SchemaNotFoundError:
        return f"no Kubernetes {KUBERNETES} schema for {doc.get('apiVersion')} {doc.get('kind')}"
    return None


def test_deploy_holds_the_nightly_manifests() -> None:
    kinds = {doc["kind"] for _, doc in _documents()}
    assert {"CronJob", "ServiceAccount", "ConfigMap"} <= kinds, kinds


@pytest.mark.parametrize(("where", "doc"), _documents(), ids=[w for w, _ in _documents()])
def test_every_manifest_matches_the_kubernetes_schema(where: str, doc: dict[str, Any]) -> None:
    assert _schema_errors(doc) is None, f"{where}: {_schema_errors(doc)}"


def _container(cronjob: dict[str, Any]) -> dict[str, Any]:
    [container] = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    return container


def test_a_misspelt_field_or_a_missing_required_one_fails_the_schema() -> None:
    misspelt = copy.deepcopy(_one("CronJob"))
    misspelt["spec"]["concurencyPolicy"] = misspelt["spec"].pop("concurrencyPolicy")
    assert "'concurencyPolicy' was unexpected" in _schema_errors(misspelt)
    nameless = copy.deepcopy(_one("CronJob"))
    del _container(nameless)["name"]
    assert "'name' is a required property" in _schema_errors(nameless)


def test_the_cronjob_runs_nightly_once_at_a_time_within_a_deadline_as_the_shipped_serviceaccount() -> None:
    cronjob = _one("CronJob")
    spec, job = cronjob["spec"], cronjob["spec"]["jobTemplate"]["spec"]
    assert spec["concurrencyPolicy"] == "Forbid" and job["activeDeadlineSeconds"] > 0
    assert re.fullmatch(r"\d+ \d+ \* \* \*", spec["schedule"]), spec["schedule"]
    name = job["template"]["spec"]["serviceAccountName"]
    [account] = [d["metadata"] for _, d in _documents() if d["kind"] == "ServiceAccount"
                 and d["metadata"]["name"] == name]
    assert account["namespace"] == cronjob["metadata"]["namespace"]


def test_credentials_come_from_secrets_by_name_never_as_values() -> None:
    env = _container(_one("CronJob"))["env"]
    literal = [e["name"] for e in env if "value" in e and SECRET_LIKE.search(e["name"])]
    assert literal == [], f"credentials given as literal values: {literal}"
    from_secrets = {e["name"] for e in env if "secretKeyRef" in e.get("valueFrom", {})}
    assert from_secrets, "no credential comes from a Secret"
    for e in env:
        if e["name"] in from_secrets:
            assert set(e["valueFrom"]["secretKeyRef"]) == {"name", "key"}, e


def _target_file(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """The ConfigMap's target file where the CronJob mounts it, written to ``tmp_path``."""
    container, cronjob = _container(_one("CronJob")), _one("CronJob")
    args = nightly_args(container["args"])
    [mount] = [m for m in container["volumeMounts"] if args.target_file.is_relative_to(m["mountPath"])]
    volumes = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["volumes"]
    [volume] = [v for v in volumes if v["name"] == mount["name"]]
    configmap = _one("ConfigMap")
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    path = tmp_path / args.target_file.name
    path.write_text(configmap["data"][args.target_file.relative_to(mount["mountPath"]).as_posix()])
    return path, container


def nightly_args(args: list[str]) -> Any:
    """The CronJob's arguments as ``akko-dr`` parses them."""
    import argparse

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    nightly.add_nightly_command(sub)
    return parser.parse_args(args)


def test_the_cronjob_runs_the_nightly_command_on_the_configmaps_target_file(tmp_path: Path) -> None:
    path, container = _target_file(tmp_path)
    args = nightly_args(container["args"])
    assert (args.command, args.target) == ("nightly", "live")
    policy = load_policy()
    cfg = nightly.nightly_config(path, policy)
    assert cfg.embedded or cfg.segregated is not None, "the target file names no segregated server"
    for name in cfg.databases:
        policy.database(name)


def test_every_credential_the_target_file_names_is_filled_from_a_secret(tmp_path: Path) -> None:
    path, container = _target_file(tmp_path)
    tf = load_target_file(path)
    wanted = {c.env for c in (tf.s3_access_key, tf.s3_secret_key, tf.pg_password) if c is not None}
    from_secrets = {e["name"] for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})}
    assert wanted and wanted <= from_secrets, f"not filled from a Secret: {sorted(wanted - from_secrets)}"


def test_the_image_runs_akko_dr_as_the_non_root_user_the_cronjob_expects() -> None:
    dockerfile = (CHECKOUT / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\d+)", dockerfile, re.M)
    assert users and users[-1] != "0", users
    assert re.search(r'^ENTRYPOINT \["akko-dr"\]$', dockerfile, re.M)
    pod = _one("CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]["securityContext"]
    assert pod["runAsNonRoot"] is True and str(pod["runAsUser"]) == users[-1]
