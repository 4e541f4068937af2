"""deploy/kubernetes renders with kubectl's kustomize, every object is valid for the
Kubernetes versions we support (kubernetes-validate, offline), and the objects fit together:
what the pods reference exists, they run as the issue asks, and their commands are real."""

from __future__ import annotations

import shlex
import shutil
import subprocess
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
CUSTOM_RESOURCES = {("postgresql.cnpg.io/v1", "Cluster")}
"""Objects of operators' CRDs: no schema ships for them; checked field by field below."""

Manifest = dict[str, Any]


def render(overlay: str) -> list[Manifest]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail(
            "the deployment tests need kubectl (Debian: apt-get install -y kubernetes-client)"
        )
    rendered = subprocess.run(  # noqa: S603 - kubectl, with our own directory
        [kubectl, "kustomize", str(DEPLOY / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert rendered.returncode == 0, rendered.stderr
    return [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]


@pytest.fixture(scope="module", params=["base", "overlays/production"])
def objects(request: pytest.FixtureRequest) -> list[Manifest]:
    return render(request.param)


@pytest.fixture(scope="module")
def production() -> list[Manifest]:
    return render("overlays/production")


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
    assert kinds >= CUSTOM_RESOURCES
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
    assert credentials["stringData"]["username"] == initdb["owner"]
    # Allowed top-level fields of the Cluster spec (postgresql.cnpg.io/v1) that we use.
    assert set(cluster) <= {
        "instances", "imageName", "primaryUpdateStrategy", "bootstrap", "storage",
        "walStorage", "postgresql", "monitoring", "resources", "affinity", "managed",
    }  # fmt: skip


def test_pods_reference_only_what_the_render_contains(objects: list[Manifest]) -> None:
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
                    secret = one(objects, "Secret", ref["name"])
                    assert ref["key"] in secret["stringData"], (pod, ref)
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
    assert deployment["spec"]["replicas"] >= 3
    service = one(objects, "Service", "vssid-broker")
    assert service["spec"]["selector"].items() <= labels.items()
    hpa = one(objects, "HorizontalPodAutoscaler", "vssid-broker")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "vssid-broker"
    assert hpa["spec"]["minReplicas"] >= 3
    pdb = one(objects, "PodDisruptionBudget", "vssid-broker")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    assert any(p["spec"]["podSelector"] == {} for p in policies)  # deny by default
    assert any(
        p["spec"]["podSelector"].get("matchLabels", {}).items() <= labels.items()
        and p["spec"]["podSelector"] != {}
        for p in policies
    )


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
    def env(name: str) -> dict[str, Any]:
        [(_, spec)] = [p for p in pod_specs(production) if p[0] == name]
        return {v["name"]: v for v in spec["containers"][0]["env"]}

    served = env("vssid-broker")
    migrating = env("vssid-broker-migrate")
    role = served["VSSID_DATABASE_URL"]["value"].split("//")[1].split(":")[0]
    owner = migrating["VSSID_DATABASE_URL"]["value"].split("//")[1].split(":")[0]
    cluster = one(production, "Cluster", "vssid-db")["spec"]
    assert owner == cluster["bootstrap"]["initdb"]["owner"] != role
    assert migrating["VSSID_DATABASE_SERVICE_ROLE"]["value"] == role
    [managed] = [r for r in cluster["managed"]["roles"] if r["name"] == role]
    assert managed["login"] is True and not managed.get("superuser")
    password = served["DATABASE_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"]
    assert managed["passwordSecret"]["name"] == password
    assert one(production, "Secret", password)["stringData"]["username"] == role


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
