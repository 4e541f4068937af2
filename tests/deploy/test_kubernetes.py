"""deploy/kubernetes renders with kubectl's kustomize, every object is valid for the
Kubernetes versions we support (kubernetes-validate, offline), and the objects fit together:
what the pods reference exists, they run as the issue asks, and their commands are real."""

from __future__ import annotations

import base64
import shlex
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from vssid_broker.cli import build_parser
from vssid_broker.config import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
"""The oldest and newest releases validated; kubernetes-validate ships their schemas."""
CUSTOM_RESOURCES = {
    ("postgresql.cnpg.io/v1", "Cluster"),
    ("postgresql.cnpg.io/v1", "ScheduledBackup"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
}
"""Objects of operators' CRDs: no schema ships for them; checked field by field below."""
PRODUCTION_SECRET_FILES = (
    "key-encryption-key",
    "blind-index-key",
    "vneid-client-secret",
    "db-username",
    "db-password",
    "db-service-username",
    "db-service-password",
    "audit-anchor-key.pem",
    "backup-access-key-id",
    "backup-secret-access-key",
)
"""The files of overlays/production/secrets/ (never committed) the overlay's Secrets come from."""

Manifest = dict[str, Any]


def kustomize(directory: Path) -> subprocess.CompletedProcess[str]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail(
            "the deployment tests need kubectl (Debian: apt-get install -y kubernetes-client)"
        )
    return subprocess.run(  # noqa: S603 - kubectl, with our own directory
        [kubectl, "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def with_secret_files(tree: Path) -> Path:
    """A copy of deploy/kubernetes with the production Secrets' files written, as an operator's
    checkout has them (from the secret store) and the repository never does."""
    shutil.copytree(DEPLOY, tree)
    for name in PRODUCTION_SECRET_FILES:
        usernames = {"db-username": "vssid", "db-service-username": "vssid_app"}
        value = usernames.get(name, f"test-value-of-{name}")
        (tree / "overlays" / "production" / "secrets" / name).write_text(value)
    return tree


def render(directory: Path) -> list[Manifest]:
    rendered = kustomize(directory)
    assert rendered.returncode == 0, rendered.stderr
    return [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> list[Manifest]:
    tree = with_secret_files(tmp_path_factory.mktemp("deploy") / "kubernetes")
    return render(tree / "overlays" / "production")


@pytest.fixture(scope="module")
def base() -> list[Manifest]:
    return render(DEPLOY / "base")


@pytest.fixture(scope="module", params=["base", "overlays/production"])
def objects(
    request: pytest.FixtureRequest, base: list[Manifest], production: list[Manifest]
) -> list[Manifest]:
    return base if request.param == "base" else production


def secret_value(secret: Manifest, key: str) -> str:
    if key in secret.get("stringData", {}):
        return str(secret["stringData"][key])
    return base64.b64decode(secret["data"][key]).decode()


def one(objects: list[Manifest], kind: str, name: str) -> Manifest:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def pod_specs(objects: list[Manifest]) -> list[tuple[str, Manifest]]:
    """Every pod template: Deployments', Jobs' and CronJobs' (one level deeper)."""
    specs = []
    for manifest in objects:
        if manifest["kind"] not in ("Deployment", "Job", "CronJob"):
            continue
        spec = manifest["spec"]
        if manifest["kind"] == "CronJob":
            spec = spec["jobTemplate"]["spec"]
        specs.append((manifest["metadata"]["name"], spec["template"]["spec"]))
    return specs


def test_every_object_is_valid_for_kubernetes(objects: list[Manifest]) -> None:
    kinds = {(o["apiVersion"], o["kind"]) for o in objects}
    assert ("postgresql.cnpg.io/v1", "Cluster") in kinds
    for manifest in objects:
        if (manifest["apiVersion"], manifest["kind"]) in CUSTOM_RESOURCES:
            continue
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(manifest, version, strict=True)


def test_the_validator_catches_a_misspelt_field(production: list[Manifest]) -> None:
    deployment = one(production, "Deployment", "vssid-broker")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    container = broken["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def test_the_postgresql_cluster_is_what_cloudnativepg_expects(production: list[Manifest]) -> None:
    cluster = one(production, "Cluster", "vssid-db")["spec"]
    assert cluster["instances"] == 3  # a primary and two replicas
    assert cluster["storage"]["size"].endswith("Gi")
    initdb = cluster["bootstrap"]["initdb"]
    assert initdb["database"] == "vssid" and initdb["owner"] == "vssid"
    credentials = one(production, "Secret", initdb["secret"]["name"])
    assert credentials["type"] == "kubernetes.io/basic-auth"
    assert secret_value(credentials, "username") == initdb["owner"]
    # Allowed top-level fields of the Cluster spec (postgresql.cnpg.io/v1) that we use.
    assert set(cluster) <= {
        "instances", "imageName", "primaryUpdateStrategy", "bootstrap", "storage",
        "walStorage", "postgresql", "monitoring", "resources", "affinity", "managed", "backup",
    }  # fmt: skip


def test_a_failover_loses_no_committed_transaction(production: list[Manifest]) -> None:
    # Quorum commit: every commit waits for one of the two standbys (CloudNativePG >= 1.25).
    cluster = one(production, "Cluster", "vssid-db")["spec"]
    assert cluster["postgresql"]["synchronous"] == {
        "method": "any",
        "number": 1,
        "dataDurability": "required",
    }
    assert cluster["postgresql"]["synchronous"]["number"] < cluster["instances"] - 1


def test_wal_is_archived_and_base_backups_are_scheduled(production: list[Manifest]) -> None:
    cluster = one(production, "Cluster", "vssid-db")["spec"]
    backup = cluster["backup"]
    assert set(backup) == {"retentionPolicy", "barmanObjectStore"}
    assert backup["retentionPolicy"].rstrip("dwm").isdigit()
    store = backup["barmanObjectStore"]
    assert set(store) <= {"destinationPath", "endpointURL", "s3Credentials", "wal", "data"}
    assert store["destinationPath"].startswith("s3://")
    for reference in store["s3Credentials"].values():
        secret = one(production, "Secret", reference["name"])
        assert secret_value(secret, reference["key"])
    assert cluster["monitoring"]["enablePodMonitor"] is True  # the backup-age alert's metrics
    scheduled = one(production, "ScheduledBackup", "vssid-db-nightly")["spec"]
    assert scheduled["cluster"]["name"] == "vssid-db"
    assert scheduled["method"] == "barmanObjectStore"
    assert len(scheduled["schedule"].split()) == 6  # CloudNativePG's: seconds first
    assert set(scheduled) <= {"schedule", "immediate", "backupOwnerReference", "method", "cluster"}


def test_the_base_holds_no_secret(base: list[Manifest]) -> None:
    assert [o["metadata"]["name"] for o in base if o["kind"] == "Secret"] == []


def test_a_production_render_without_the_secret_files_fails_naming_one(tmp_path: Path) -> None:
    tree = with_secret_files(tmp_path / "kubernetes")
    (tree / "overlays" / "production" / "secrets" / "blind-index-key").unlink()
    rendered = kustomize(tree / "overlays" / "production")
    assert rendered.returncode != 0
    assert "secrets/blind-index-key" in rendered.stderr
    # ...and the repository itself holds none of them (only the .gitignore and README).
    committed = DEPLOY / "overlays" / "production" / "secrets"
    assert not set(PRODUCTION_SECRET_FILES) & {f.name for f in committed.iterdir()}


def test_no_secret_value_is_a_placeholder(production: list[Manifest]) -> None:
    secrets = [o for o in production if o["kind"] == "Secret"]
    assert {s["metadata"]["name"] for s in secrets} == {
        "vssid-broker-keys",
        "vssid-db-credentials",
        "vssid-db-service-credentials",
        "vssid-audit-anchor-key",
        "vssid-backup-credentials",
    }
    for secret in secrets:
        assert "stringData" not in secret
        for key in secret["data"]:
            value = secret_value(secret, key)
            # Exactly what the operator's files hold: no value the overlay supplies itself.
            assert value in {"vssid", "vssid_app"} or value.startswith("test-value-of-"), (
                secret,
                key,
            )
            assert "REPLACE" not in value.upper()


def test_pods_reference_only_what_the_render_contains(
    objects: list[Manifest], production: list[Manifest]
) -> None:
    # The base's Secrets come from its overlay: checked against production's for both.
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    for pod, spec in pod_specs(objects):
        if spec.get("serviceAccountName"):
            assert ("ServiceAccount", spec["serviceAccountName"]) in names, pod
        for container in spec["containers"]:
            for source in container.get("envFrom", []):
                assert ("ConfigMap", source["configMapRef"]["name"]) in names, pod
            for variable in container.get("env", []):
                ref = variable.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    secret = one(production, "Secret", ref["name"])
                    assert secret_value(secret, ref["key"]), (pod, ref)
            mounts = {mount["name"] for mount in container.get("volumeMounts", [])}
            assert mounts <= {volume["name"] for volume in spec.get("volumes", [])}, pod


def test_pods_run_unprivileged_on_a_read_only_root(objects: list[Manifest]) -> None:
    for pod, spec in pod_specs(objects):
        assert spec["securityContext"]["runAsNonRoot"] is True, pod
        assert spec["automountServiceAccountToken"] is False, pod
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, pod
            assert context["allowPrivilegeEscalation"] is False, pod
            assert context["capabilities"]["drop"] == ["ALL"], pod
            assert "memory" in container["resources"]["limits"], pod


def test_the_broker_deployment_is_probed_scaled_and_protected(objects: list[Manifest]) -> None:
    deployment = one(objects, "Deployment", "vssid-broker")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    service = one(objects, "Service", "vssid-broker")
    assert service["spec"]["selector"].items() <= labels.items()
    hpa = one(objects, "HorizontalPodAutoscaler", "vssid-broker")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "vssid-broker"
    assert hpa["spec"]["minReplicas"] >= 3
    # The autoscaler owns the count: a `replicas` beside it would reset it at every apply.
    assert "replicas" not in deployment["spec"]
    pdb = one(objects, "PodDisruptionBudget", "vssid-broker")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["maxUnavailable"] < hpa["spec"]["minReplicas"]
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    assert any(p["spec"]["podSelector"] == {} for p in policies)  # deny by default
    assert any(
        p["spec"]["podSelector"].get("matchLabels", {}).items() <= labels.items()
        and p["spec"]["podSelector"] != {}
        for p in policies
    )


def test_a_stopping_pod_is_forgotten_before_it_stops_answering(objects: list[Manifest]) -> None:
    pod = one(objects, "Deployment", "vssid-broker")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    delay = int(command[1])
    assert delay >= 5
    # The grace period covers the sleep and then uvicorn's draining of requests in flight.
    assert pod["terminationGracePeriodSeconds"] >= delay + 30


def test_each_release_has_its_own_migration_job(production: list[Manifest]) -> None:
    (job,) = [o for o in production if o["kind"] == "Job"]
    image = job["spec"]["template"]["spec"]["containers"][0]["image"]
    tag = image.rsplit(":", 1)[1]
    assert job["metadata"]["name"] == "vssid-broker-migrate-" + tag.replace(".", "-")


def test_prometheus_scrapes_the_broker_under_the_job_the_alerts_name(
    production: list[Manifest],
) -> None:
    monitor = one(production, "ServiceMonitor", "vssid-broker")["spec"]
    assert set(monitor) == {"selector", "endpoints"}
    service = one(production, "Service", "vssid-broker")
    # The Prometheus Operator labels the scrape job with the Service's name.
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["endpoints"]
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    alerts = (DEPLOY.parent / "monitoring" / "alerts.yaml").read_text()
    assert f'absent(up{{job="{service["metadata"]["name"]}"}}' in alerts


def test_the_commands_the_pods_run_are_real_commands(production: list[Manifest]) -> None:
    parser = build_parser()
    commands = [
        container["args"]
        for _, spec in pod_specs(production)
        for container in spec["containers"]
        if container["image"].split(":")[0].endswith("vssid-broker")
    ]
    assert len(commands) == 4  # the broker, the migration Job, the daily purge, the anchor
    for args in commands:
        line = args[2] if args[:2] == ["sh", "-c"] else shlex.join(args)
        for command in line.split("&&"):
            words = shlex.split(command)
            assert words[0] == "vssid-broker"
            parser.parse_args(words[1:])  # exits on an unknown command or option


def test_the_broker_serves_as_the_role_the_migration_job_grants(
    production: list[Manifest],
) -> None:
    def env(matches: Callable[[str], bool]) -> dict[str, Any]:
        [(_, spec)] = [p for p in pod_specs(production) if matches(p[0])]
        return {v["name"]: v for v in spec["containers"][0]["env"]}

    served = env(lambda name: name == "vssid-broker")
    # The migration Job's name ends in the release (release.yaml).
    migrating = env(lambda name: name.startswith("vssid-broker-migrate-"))
    role = served["VSSID_DATABASE_URL"]["value"].split("//")[1].split(":")[0]
    owner = migrating["VSSID_DATABASE_URL"]["value"].split("//")[1].split(":")[0]
    cluster = one(production, "Cluster", "vssid-db")["spec"]
    assert owner == cluster["bootstrap"]["initdb"]["owner"] != role
    assert migrating["VSSID_DATABASE_SERVICE_ROLE"]["value"] == role
    [managed] = [r for r in cluster["managed"]["roles"] if r["name"] == role]
    assert managed["login"] is True and not managed.get("superuser")
    password = served["DATABASE_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"]
    assert managed["passwordSecret"]["name"] == password
    assert secret_value(one(production, "Secret", password), "username") == role


def test_production_pins_its_image(production: list[Manifest]) -> None:
    images = {
        container["image"] for _, spec in pod_specs(production) for container in spec["containers"]
    }
    broker_images = {image for image in images if "vssid-broker" in image}
    assert len(broker_images) == 1  # the Jobs run exactly the image that rolls out
    (image,) = broker_images
    assert ":" in image and not image.endswith(":latest")


def test_every_setting_the_pods_get_is_one_the_broker_reads(objects: list[Manifest]) -> None:
    # A misspelt name is silently ignored by the broker; the keys it must share between pods
    # (key-encryption and blind-index keys) must reach every pod that seals or looks up.
    known = {f"VSSID_{name.upper()}" for name in Settings.model_fields}
    config = one(objects, "ConfigMap", "vssid-broker-config")["data"]
    assert {key for key in config if key.startswith("VSSID_")} <= known
    for name, spec in pod_specs(objects):
        for container in spec["containers"]:
            given = {variable["name"] for variable in container.get("env", [])}
            assert {key for key in given if key.startswith("VSSID_")} <= known, name
            if name.startswith("vssid-broker"):
                assert {"VSSID_KEY_ENCRYPTION_KEY", "VSSID_BLIND_INDEX_KEY"} <= given, name
