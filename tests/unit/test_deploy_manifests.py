"""The Kubernetes manifests in deploy/: exit codes, hardening, time budget, parallel variant.

The schema of every manifest is checked by kubernetes-validate in dev/check-deploy.sh; these
tests check what a schema cannot: that the manifests agree with the code and with each other.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from etl.core.config_sources import load_config
from etl.core.errors import EXIT_CODES, PERMANENT_EXIT_CODES

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BASE = DEPLOY / "base"


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def one(path: Path, kind: str) -> dict[str, Any]:
    found = [doc for doc in documents(path) if doc["kind"] == kind]
    assert len(found) == 1, f"{path}: expected one {kind}"
    return found[0]


def cronjob() -> dict[str, Any]:
    return one(BASE / "cronjob.yaml", "CronJob")


def job_specs() -> dict[str, dict[str, Any]]:
    """Every Job spec the kustomizations create, by file."""
    return {
        "cronjob.yaml": cronjob()["spec"]["jobTemplate"]["spec"],
        "migrate-job.yaml": one(BASE / "migrate-job.yaml", "Job")["spec"],
    }


def rule(spec: dict[str, Any], action: str) -> dict[str, Any]:
    rules = [r for r in spec["podFailurePolicy"]["rules"] if r["action"] == action]
    assert len(rules) == 1
    found: dict[str, Any] = rules[0]
    return found


def test_the_job_fails_at_once_exactly_on_the_permanent_exit_codes() -> None:
    spec = cronjob()["spec"]["jobTemplate"]["spec"]
    on_codes = rule(spec, "FailJob")["onExitCodes"]
    assert on_codes["operator"] == "In"
    assert on_codes["containerName"] == "etl"
    assert set(on_codes["values"]) == set(PERMANENT_EXIT_CODES)
    retried = rule(spec, "Count")["onExitCodes"]["values"]
    assert set(retried) <= set(EXIT_CODES) - set(PERMANENT_EXIT_CODES)


def test_exit_code_lists_are_sorted_and_unique_as_the_api_requires() -> None:
    for name, spec in job_specs().items():
        for r in spec["podFailurePolicy"]["rules"]:
            if "onExitCodes" in r:
                values = r["onExitCodes"]["values"]
                assert values == sorted(set(values)), name
                assert set(values) <= set(EXIT_CODES), name


def test_disruptions_are_ignored_with_the_condition_status_kubernetes_1_29_requires() -> None:
    for name, spec in job_specs().items():
        conditions = rule(spec, "Ignore")["onPodConditions"]
        assert conditions == [{"type": "DisruptionTarget", "status": "True"}], name


def test_every_pod_meets_the_restricted_pod_security_standard() -> None:
    for name, spec in job_specs().items():
        pod = spec["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["restartPolicy"] == "Never", name  # podFailurePolicy requires it
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] > 0, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert "hostNetwork" not in pod and "hostPID" not in pod, name
        for container in pod["containers"]:
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["runAsNonRoot"] is True, name
            assert sc["capabilities"] == {"drop": ["ALL"]}, name
            assert container["resources"]["requests"]["memory"], name
            assert container["resources"]["limits"]["memory"], name
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert "/tmp" in mounts, f"{name}: a read-only root needs a writable /tmp"
        labels = spec["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "etl", name


def schedule_period_seconds(schedule: str) -> int:
    match = re.fullmatch(r"\*/(\d+) \* \* \* \*", schedule)
    assert match, f"unexpected schedule {schedule!r}: teach this test its period"
    return int(match.group(1)) * 60


def test_a_run_and_its_grace_period_end_before_the_next_schedule() -> None:
    cron = cronjob()["spec"]
    spec = cron["jobTemplate"]["spec"]
    grace = spec["template"]["spec"]["terminationGracePeriodSeconds"]
    assert cron["concurrencyPolicy"] == "Forbid"
    # After SIGTERM the run finishes the batch in hand within about 10 s.
    assert 30 <= grace <= 120
    period = schedule_period_seconds(cron["schedule"])
    assert spec["activeDeadlineSeconds"] + grace < period
    assert cron["startingDeadlineSeconds"] < period


def test_the_top_level_cronjob_is_the_deploy_cronjob_and_carries_no_secret() -> None:
    top = ROOT / "cronjob.yaml"
    assert top.read_text() == (BASE / "cronjob.yaml").read_text()
    assert [doc["kind"] for doc in documents(top)] == ["CronJob"]


def test_the_kustomizations_never_apply_the_example_secret() -> None:
    for directory in (DEPLOY, BASE, DEPLOY / "parallel"):
        kustomization = documents(directory / "kustomization.yaml")[0]
        for resource in kustomization["resources"]:
            target = directory / resource
            assert target.exists(), f"{directory}: {resource} does not exist"
            if target.is_file():
                assert "Secret" not in {doc["kind"] for doc in documents(target)}
    secret = one(DEPLOY / "secret.example.yaml", "Secret")
    pod = cronjob()["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    refs = [e["secretRef"]["name"] for e in pod["containers"][0]["envFrom"]]
    assert refs == [secret["metadata"]["name"]]


def test_the_configmap_and_the_example_secret_make_a_valid_configuration(
    tmp_path: Path,
) -> None:
    config_map = one(BASE / "configmap.yaml", "ConfigMap")
    path = tmp_path / "etl.toml"
    path.write_text(config_map["data"]["etl.toml"])
    tomllib.loads(path.read_text())
    env = one(DEPLOY / "secret.example.yaml", "Secret")["stringData"]
    cfg = load_config(path, env)
    assert cfg.kafka.client["sasl.password"] == "CHANGE-ME"
    # The database password is libpq's PGPASSWORD, never part of the DSN.
    assert not cfg.postgres.has_password
    assert env["PGPASSWORD"] == "CHANGE-ME"
    assert cfg.pushgateway.job == "etl"
    args = cronjob()["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--config") + 1] == "/etc/etl/" + next(iter(config_map["data"]))


def test_the_migrate_job_runs_etl_db_migrate() -> None:
    container = one(BASE / "migrate-job.yaml", "Job")["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:2] == ["db", "migrate"]
    assert (
        container["image"]
        == cronjob()["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"]
    )


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion of variables defined earlier in the list."""
    return re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), value)


@pytest.mark.parametrize("index", ["0", "3"])
def test_parallel_pods_push_under_their_completion_index(index: str) -> None:
    patch = one(DEPLOY / "parallel" / "indexed.yaml", "CronJob")
    assert patch["metadata"]["name"] == cronjob()["metadata"]["name"]
    spec = patch["spec"]["jobTemplate"]["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["parallelism"] == spec["completions"] >= 2
    env: dict[str, str] = {}
    for var in spec["template"]["spec"]["containers"][0]["env"]:
        if var["name"] == "JOB_COMPLETION_INDEX":
            field = var["valueFrom"]["fieldRef"]["fieldPath"]
            assert field == "metadata.annotations['batch.kubernetes.io/job-completion-index']"
            env[var["name"]] = index
        else:
            env[var["name"]] = expand(var["value"], env)
    cfg = load_config(None, env)
    assert cfg.pushgateway.grouping_key == {"worker": index}
