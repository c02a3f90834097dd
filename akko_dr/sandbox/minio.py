"""Real MinIO servers for the sandbox: the object store, its off-site replica, and the compromised
identity as a MinIO user with its own access key and policy (MinIO's admin API, through the ``minio``
package). Root and user secrets are random, live in memory only and never reach a report."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from akko_dr.adapters.s3 import S3ObjectStore
from akko_dr.errors import DrillError
from akko_dr.ports import StoreRefused
from akko_dr.sandbox.processes import ServerProcess, free_port, version_of

START_DEADLINE = 30.0
ROOT_USER = "akko-root"


def admin_policy(buckets: list[str]) -> dict:
    """An administrator's policy: every S3 action on the platform's buckets (what akko-admin holds)."""
    resources = [f"arn:aws:s3:::{b}" for b in buckets] + [f"arn:aws:s3:::{b}/*" for b in buckets]
    return {"Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": ["s3:*"], "Resource": resources}]}


class MinioServer:
    """One MinIO server process on 127.0.0.1 (a free port), its data in ``data_dir``."""

    def __init__(self, binary: Path, data_dir: Path, name: str = "minio") -> None:
        self.binary, self.name = binary, name
        self.version = version_of(binary)
        self._secret = secrets.token_urlsafe(24)
        port, console = free_port(), free_port()
        self.address = f"127.0.0.1:{port}"
        self.endpoint = f"http://{self.address}"
        argv = [str(binary), "server", str(data_dir), "--address", self.address,
                "--console-address", f"127.0.0.1:{console}", "--quiet"]
        env = {"MINIO_ROOT_USER": ROOT_USER, "MINIO_ROOT_PASSWORD": self._secret,
               "MINIO_BROWSER": "off", "MINIO_UPDATE": "off"}
        self._process = ServerProcess(name, argv, data_dir.parent / f"{name}.log",
                                      f"{self.endpoint}/minio/health/ready", START_DEADLINE, env)

    def __repr__(self) -> str:
        return f"MinioServer({self.name} at {self.endpoint})"

    def describe(self) -> str:
        return f"MinIO {self.version} (real server) at {self.endpoint}"

    def root_keys(self) -> tuple[str, str]:
        """The root user's access key and secret (what the platform's own services use)."""
        return ROOT_USER, self._secret

    def store(self) -> S3ObjectStore:
        """The store as the platform's root user sees it."""
        return S3ObjectStore(self.endpoint, access_key=ROOT_USER, secret_key=self._secret)

    def admin(self):
        from minio.credentials import StaticProvider
        from minio.minioadmin import MinioAdmin

        return MinioAdmin(endpoint=self.address, credentials=StaticProvider(ROOT_USER, self._secret),
                          secure=False)

    def stop(self) -> None:
        self._process.stop()


class MinioUsers:
    """Identities as MinIO users: the access key is the identity's name, the secret random, one policy
    each. What the attacker of Drill 3 holds, and what containment disables and rotates."""

    kind = "MinIO users (access key and policy per identity)"

    def __init__(self, server: MinioServer, buckets: list[str]) -> None:
        self.server, self.buckets = server, buckets
        self._secrets: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"MinioUsers({sorted(self._secrets)})"

    def _admin(self, what: str, call, *args, **kwargs) -> str:
        from minio.error import MinioAdminException

        try:
            return call(*args, **kwargs)
        except MinioAdminException as err:
            raise DrillError(f"MinIO admin API refused {what}: {_admin_reason(err)}") from None

    def provision(self, identity: str) -> None:
        """(Re-)create ``identity`` as an enabled user with a fresh secret and its own admin policy."""
        admin = self.server.admin()
        policy = f"{identity}-policy"
        self._admin(f"adding policy {policy}", admin.policy_add, policy, policy=admin_policy(self.buckets))
        secret = secrets.token_urlsafe(24)
        self._admin(f"adding user {identity}", admin.user_add, identity, secret)
        if policy not in self.policies(identity):
            self._admin(f"attaching {policy} to {identity}", admin.attach_policy, [policy], user=identity)
        self._secrets[identity] = secret

    def policies(self, identity: str) -> list[str]:
        info = json.loads(self._admin(f"reading user {identity}", self.server.admin().user_info, identity))
        return [p for p in str(info.get("policyName", "")).split(",") if p]

    def keys(self, identity: str) -> tuple[str, str]:
        """The identity's current access key and secret (what an attacker holding them would use)."""
        if identity not in self._secrets:
            raise DrillError(f"identity {identity!r} has no MinIO access key in the sandbox")
        return identity, self._secrets[identity]

    def breach_keys(self, identity: str) -> tuple[str, str]:
        """The keys as the attacker stole them: the identity enabled with its policy again, as before the
        breach (a rehearsal replays the breach after an earlier containment), and its access key."""
        self.provision(identity)
        return self.keys(identity)

    def can_authenticate(self, key: str, secret: str) -> tuple[bool, str]:
        """Whether MinIO accepts these keys (a read of the first bucket), and its answer (secret-free)."""
        try:
            S3ObjectStore(self.server.endpoint, access_key=key, secret_key=secret).list(self.buckets[0], "-")
        except StoreRefused as err:
            return False, f"{err.code} (HTTP {err.status})"
        return True, "accepted"

    def disable(self, identity: str) -> None:
        self.keys(identity)
        self._admin(f"disabling user {identity}", self.server.admin().user_disable, identity)

    def enabled(self, identity: str) -> bool:
        info = json.loads(self._admin(f"reading user {identity}", self.server.admin().user_info, identity))
        return info.get("status") == "enabled"

    def rotate(self, identity: str) -> None:
        """A new random secret for the identity's access key; the old one stops working. A disabled
        user stays disabled (MinIO's add-user enables it: it is disabled again at once)."""
        self.keys(identity)
        was_enabled, secret = self.enabled(identity), secrets.token_urlsafe(24)
        admin = self.server.admin()
        self._admin(f"rotating the secret of {identity}", admin.user_add, identity, secret)
        self._secrets[identity] = secret
        if not was_enabled:
            self._admin(f"disabling user {identity}", admin.user_disable, identity)


def _admin_reason(err: Exception) -> str:
    """MinIO's admin error code and message, without the request it answered."""
    body = str(err).partition("Body: ")[2]
    try:
        data = json.loads(body)
        return f"{data.get('Code')}: {data.get('Message')}"
    except ValueError:
        return type(err).__name__
