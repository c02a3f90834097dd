"""The WORM proof counts only refusals because of the lock. Answers come from a real S3 server that
authenticates: moto with IAM authentication switched on (``/moto-api/reset-auth``), in a process of its own,
so that wrong credentials get the store's real SignatureDoesNotMatch and InvalidAccessKeyId answers."""

from __future__ import annotations

import json
import secrets
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta

import boto3
import pytest
from botocore.exceptions import ClientError

from akko_dr.adapters.s3 import S3ObjectStore, refusal
from akko_dr.checks.verification import (
    PROBE_HOLD,
    PROBE_PREFIX,
    WormProbe,
    check_delete_refused,
    check_shorten_refused,
    write_probe,
)
from akko_dr.measure import utcnow
from akko_dr.policy import Policy
from akko_dr.sandbox.emulator import _ProcessServer
from akko_dr.worm import attempt, classify

ADMIN = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}


@dataclass
class AuthStore:
    """An S3 server that authenticates, a lock bucket on it, and a user whose keys authenticate."""

    endpoint: str
    bucket: str
    key: str
    secret: str

    def store(self, key: str | None = None, secret: str | None = None) -> S3ObjectStore:
        return S3ObjectStore(self.endpoint, access_key=key or self.key, secret_key=secret or self.secret)


@pytest.fixture(scope="module")
def auth_store() -> Iterator[AuthStore]:
    server = _ProcessServer()
    try:
        setup = {"endpoint_url": server.endpoint, "region_name": "us-east-1", "aws_access_key_id": "setup",
                 "aws_secret_access_key": "setup"}
        iam = boto3.client("iam", **setup)
        iam.create_user(UserName="auditor")
        iam.put_user_policy(UserName="auditor", PolicyName="s3", PolicyDocument=json.dumps(ADMIN))
        keys = iam.create_access_key(UserName="auditor")["AccessKey"]
        s3 = boto3.client("s3", **setup)
        bucket = f"audit-{secrets.token_hex(3)}"
        s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
        rule = {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 365}}
        s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled", "Rule": rule})
        request = urllib.request.Request(f"{server.endpoint}/moto-api/reset-auth", data=b"0", method="POST",
                                         headers={"Content-Type": "text/plain"})
        urllib.request.urlopen(request, timeout=5).close()  # from now on every request must authenticate
        yield AuthStore(server.endpoint, bucket, keys["AccessKeyId"], keys["SecretAccessKey"])
    finally:
        server.stop()


@pytest.fixture
def probe(auth_store: AuthStore, policy: Policy) -> WormProbe:
    mine = replace(policy, storage=replace(policy.storage, audit_bucket=auth_store.bucket))
    return write_probe(mine, auth_store.store(), utcnow())


def test_a_probe_carries_its_own_day_long_lock_under_the_probe_prefix(auth_store: AuthStore,
                                                                     probe: WormProbe) -> None:
    mode, until = auth_store.store().retention(probe.bucket, probe.key, probe.version_id)
    assert probe.key.startswith(PROBE_PREFIX) and mode == "COMPLIANCE"
    assert until is not None and until - utcnow() <= PROBE_HOLD, f"locked until {until}, not for a day"


def test_a_refusal_by_the_lock_with_real_credentials_proves_it(auth_store: AuthStore,
                                                               probe: WormProbe) -> None:
    result = check_delete_refused(probe, auth_store.store())
    assert result.status == "passed" and "refused by the lock (AccessDenied (HTTP 403))" in result.reason


def test_the_shortening_probe_asks_for_a_date_still_in_the_future(auth_store: AuthStore,
                                                                   probe: WormProbe) -> None:
    """moto accepts shortening (it does not enforce COMPLIANCE): judged as a real store, not WORM; and the
    date asked for is in the future, so a real store's refusal is about the lock, not a malformed date."""
    store = auth_store.store()
    result = check_shorten_refused(probe, store, utcnow())
    assert result.status == "failed" and "not WORM" in result.reason, result.reason
    _, until = store.retention(probe.bucket, probe.key, probe.version_id)
    assert utcnow() < until < probe.retain_until, until


def test_wrong_credentials_make_the_proof_inconclusive_never_refused(auth_store: AuthStore,
                                                                    probe: WormProbe) -> None:
    """Negative control: the store answers 403 to the wrong secret too, but not because of the lock."""
    wrong = auth_store.store(secret="not-the-secret")
    for result in (check_delete_refused(probe, wrong), check_shorten_refused(probe, wrong, utcnow())):
        assert result.status == "inconclusive", result.reason
        assert "SignatureDoesNotMatch" in result.reason and "did not authenticate" in result.reason
    unknown = check_delete_refused(probe, auth_store.store(key="AKIAUNKNOWN0000000", secret="x"))
    assert unknown.status == "inconclusive" and "InvalidAccessKeyId" in unknown.reason, unknown.reason
    assert "not-the-secret" not in unknown.reason + result.reason


def test_an_unknown_bucket_or_version_proves_nothing(auth_store: AuthStore, probe: WormProbe) -> None:
    store = auth_store.store()
    nowhere = check_delete_refused(replace(probe, bucket=f"none-{secrets.token_hex(3)}"), store)
    assert nowhere.status == "inconclusive" and "NoSuchBucket" in nowhere.reason, nowhere.reason


def test_an_unreachable_store_proves_nothing(probe: WormProbe) -> None:
    gone = S3ObjectStore("http://127.0.0.1:9", access_key="a", secret_key="b")
    result = check_delete_refused(probe, gone)
    assert result.status == "inconclusive" and "could not be reached" in result.reason, result.reason


def test_an_emulated_store_is_inconclusive_whatever_it_answers(auth_store: AuthStore,
                                                               probe: WormProbe) -> None:
    result = check_delete_refused(probe, auth_store.store(), emulator="moto S3 emulator")
    assert result.status == "inconclusive", result.reason
    assert result.reason.startswith("inconclusive (emulator): "), result.reason


def _minio(code: str, message: str, status: int = 400) -> ClientError:
    """An error answer as MinIO gives it (STACK-FACTS: HTTP 400 for a WORM-protected object)."""
    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "DeleteObject")


@pytest.mark.parametrize(("code", "message", "outcome"), [
    ("InvalidRequest", "Object is WORM protected and cannot be overwritten", "refused"),
    ("InvalidRequest", "Bucket is missing ObjectLockConfiguration", "inconclusive"),
    ("MalformedXML", "The XML you provided was not well-formed", "inconclusive"),
    ("SignatureDoesNotMatch", "The request signature we calculated does not match", "inconclusive"),
    ("InternalError", "We encountered an internal error", "inconclusive"),
])
def test_only_the_lock_specific_answers_count_as_refused(code: str, message: str, outcome: str) -> None:
    assert classify(refusal("delete", _minio(code, message)))[0] == outcome


def test_an_accepted_write_is_accepted() -> None:
    assert attempt("delete", lambda: None).outcome == "accepted"
    assert timedelta(days=1) == PROBE_HOLD
