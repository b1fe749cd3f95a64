"""The Clowder templates in deploy/clowder/: valid against the CRDs, in step with the plain
manifests and the code, and their pods' commands work as Clowder would run them.

The schema check (tests/helpers/clowder.py, also run by dev/check-deploy.sh) is itself tested
here: a mutated object must fail it, or a green check would prove nothing.
"""

from __future__ import annotations

import copy
import re
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from etl.core.config_sources import load_config
from etl.core.interval import parse_max_age
from tests.helpers.clowder import (
    TemplateError,
    errors,
    load,
    parameter_values,
    references,
    render,
)

ROOT = Path(__file__).resolve().parents[2]
CLOWDER = ROOT / "deploy" / "clowder"
MAIN, BACKFILL = CLOWDER / "clowdapp.yaml", CLOWDER / "backfill.yaml"
SAMPLE = {"ENV_NAME": "stage", "IMAGE_TAG": "0.1.0"}
BACKFILL_SAMPLE = SAMPLE | {"INVOCATION": "t1", "FROM_OFFSET": "0:100", "UNTIL_OFFSET": "0:200"}
# Clowder (commit 928e5390, providers/cronjob/impl.go) sets every CronJob pod's grace period to
# 30 s, whatever podSpec.terminationGracePeriodSeconds says.
CLOWDER_GRACE_SECONDS = 30
CLUSTER_A = "11111111-1111-1111-1111-111111111111"
CLUSTER_B = "22222222-2222-2222-2222-222222222222"
CRONJOB_NAME_MAX = 52  # Kubernetes: a CronJob's name leaves 11 characters for its Jobs' suffix


def clowdapp(**params: str) -> dict[str, Any]:
    (app,) = render(load(MAIN), SAMPLE | params)
    return app


def backfill(**params: str) -> tuple[dict[str, Any], dict[str, Any]]:
    app, cji = render(load(BACKFILL), BACKFILL_SAMPLE | params)
    return app, cji


def job(app: dict[str, Any], name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [j for j in app["spec"]["jobs"] if j["name"] == name]
    assert len(found) == 1, name
    return found[0]


def containers(job_spec: dict[str, Any]) -> Iterator[list[str]]:
    """The args of each container of the job's pod in the order they run: init ones first."""
    pod = job_spec["podSpec"]
    for init in pod.get("initContainers", []):
        assert "command" not in init and "image" not in init  # the image's ENTRYPOINT etl
        yield init["args"]
    assert "command" not in pod
    yield pod["args"]


def plain_cronjob() -> dict[str, Any]:
    cron: dict[str, Any] = yaml.safe_load((ROOT / "deploy/base/cronjob.yaml").read_text())
    return cron


@pytest.mark.parametrize(
    ("path", "params"), [(MAIN, SAMPLE), (BACKFILL, BACKFILL_SAMPLE)], ids=["main", "backfill"]
)
def test_the_templates_render_to_objects_the_crds_accept(
    path: Path, params: dict[str, str]
) -> None:
    objects = render(load(path), params)
    assert objects
    assert [line for obj in objects for line in errors(obj)] == []


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A mutation setting the dotted ``path`` (list indexes as numbers) to ``value``."""

    def mutate(obj: dict[str, Any]) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        node: Any = obj
        for part in parents:
            node = node[part]
        node[last] = value

    return mutate


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        # ${RUN_DEADLINE_SECONDS} instead of ${{...}} renders the string "780".
        (_set("spec.jobs.0.activeDeadlineSeconds", "780"), "'780' is not of type 'integer'"),
        (_set("spec.jobs.0.suspend", "false"), "'false' is not of type 'boolean'"),
        # What the plain Job has and a ClowdApp job cannot carry: refused, not dropped unseen.
        (_set("spec.jobs.0.backoffLimit", 3), "'backoffLimit' was unexpected"),
        (_set("spec.jobs.0.podFailurePolicy", {"rules": []}), "'podFailurePolicy' was unexpected"),
        (_set("spec.jobs.0.completionMode", "Indexed"), "'completionMode' was unexpected"),
        (_set("spec.jobs.0.timeZone", "Etc/UTC"), "'timeZone' was unexpected"),
        (_set("spec.jobs.0.podSpec.securityContext", {}), "'securityContext' was unexpected"),
        (_set("spec.jobs.0.podSpec.initContainers.0.resources", {}), "'resources' was unexpected"),
        (_set("spec.jobs.0.podSpec.env.0.valueFrom", {"secretKeyRef": {}}), "'key' is a required"),
        (_set("spec.kafkaTopics.0.topicName", ""), "should be non-empty"),
        (_set("spec.kafkaTopics.0.partitions", 0), "less than the minimum of 1"),
        (_set("spec.database.version", 11), "is not one of [12, 13, 14, 15, 16]"),
        (_set("spec.jobs.0.podSpec.resources.limits.memory", "512 MB"), "does not match"),
        (_set("metadata.name", "Etl_App"), "does not match"),
        (_set("apiVersion", "cloud.redhat.com/v1"), "is not one of"),
    ],
)
def test_the_schema_check_refuses_a_broken_clowdapp(
    mutate: Callable[[dict[str, Any]], None], expected: str
) -> None:
    app = clowdapp()
    mutate(app)
    problems = errors(app)
    assert any(expected in line for line in problems), problems


def test_the_schema_check_refuses_a_broken_invocation() -> None:
    _, cji = backfill()
    broken = copy.deepcopy(cji)
    broken["spec"]["jobs"] = "backfill"
    assert any("'backfill' is not of type 'array'" in line for line in errors(broken))
    broken = copy.deepcopy(cji)
    broken["spec"]["args"] = ["--until-offset", "5"]  # an invocation carries no arguments
    assert any("'args' was unexpected" in line for line in errors(broken))
    assert errors({"kind": "Secret", "metadata": {"name": "x"}}) == [
        "Secret x: no CRD here for this kind"
    ]


def test_rendering_substitutes_like_oc_process_and_refuses_what_it_would_leave_unnoticed() -> None:
    template = {
        "objects": [{"a": "${A}-x", "n": "${{N}}", "b": "${{B}}", "k": "$(KUBE_VAR)"}],
        "parameters": [{"name": "A", "value": "1"}, {"name": "N", "value": "780"}, {"name": "B"}],
    }
    assert render(template, {"B": "true"}) == [
        {"a": "1-x", "n": 780, "b": True, "k": "$(KUBE_VAR)"}
    ]
    with pytest.raises(TemplateError, match="not JSON"):
        render(template, {"B": "yes"})
    with pytest.raises(TemplateError, match="undeclared parameters: C"):
        render({"objects": ["${C}"], "parameters": []}, {})
    with pytest.raises(TemplateError, match="ENV_NAME is required"):
        render(load(MAIN), {"IMAGE_TAG": "1"})
    with pytest.raises(TemplateError, match="-p SCHEDUEL: the template has no such parameter"):
        render(load(MAIN), SAMPLE | {"SCHEDUEL": "* * * * *"})


@pytest.mark.parametrize("path", [MAIN, BACKFILL], ids=["main", "backfill"])
def test_every_parameter_is_used(path: Path) -> None:
    template = load(path)
    declared = {p["name"] for p in template["parameters"]}
    assert set(references(template["objects"])) == declared
    for param in template["parameters"]:
        assert param.get("required") or param.get("value"), param["name"]


def test_the_scheduled_run_keeps_the_plain_cronjobs_schedule_and_time_budget() -> None:
    run = job(clowdapp(), "run")
    cron = plain_cronjob()["spec"]
    plain = cron["jobTemplate"]["spec"]
    assert run["schedule"] == cron["schedule"]
    assert run["concurrencyPolicy"] == cron["concurrencyPolicy"] == "Forbid"
    assert run["startingDeadlineSeconds"] == cron["startingDeadlineSeconds"]
    assert run["activeDeadlineSeconds"] == plain["activeDeadlineSeconds"]
    assert run["restartPolicy"] == "Never"
    assert "terminationGracePeriodSeconds" not in run["podSpec"]  # Clowder would ignore it
    every = re.fullmatch(r"\*/(\d+) \* \* \* \*", run["schedule"])
    assert every, "teach this test the schedule's period"
    period = int(every[1]) * 60
    assert run["activeDeadlineSeconds"] + CLOWDER_GRACE_SECONDS < period
    assert run["startingDeadlineSeconds"] < period


def test_the_run_migrates_first_with_the_runs_environment() -> None:
    run = job(clowdapp(), "run")
    assert list(containers(run)) == [["db", "migrate", "--to", "latest"], ["run"]]
    # Without inheritEnv, Clowder gives an init container ACG_CONFIG only.
    assert all(c["inheritEnv"] for c in run["podSpec"]["initContainers"])


def test_the_cleanup_covers_the_tables_the_writers_cleaner_did_and_ours() -> None:
    cleanup = job(clowdapp(), "cleanup")
    steps = list(containers(cleanup))
    assert [s[:2] for s in steps] == [
        ["cleanup", "reported"],
        ["cleanup", "new-reports"],
        ["cleanup", "read-errors"],
        ["cleanup", "rejections"],
    ]
    assert {s[2] for s in steps} == {"--max-age"}
    assert {s[3] for s in steps} == {"8 days"}
    assert parse_max_age(steps[0][3]) == "8 days"
    assert cleanup["concurrencyPolicy"] == "Forbid"
    assert cleanup["schedule"] == "0 0 * * *"
    assert all(c["inheritEnv"] for c in cleanup["podSpec"]["initContainers"])


def test_clowder_can_create_what_the_app_declares() -> None:
    for app in (clowdapp(), backfill()[0]):
        spec = app["spec"]
        # Clowder refuses a shared database whose app is not a dependency, or with a name too.
        assert spec["database"] == {"sharedDbAppName": "ccx-notification-writer"}
        assert spec["database"]["sharedDbAppName"] in spec["dependencies"]
        for j in spec["jobs"]:
            if "schedule" in j:  # the CronJob <app>-<job>
                assert len(f"{app['metadata']['name']}-{j['name']}") <= CRONJOB_NAME_MAX
            names = [c["name"] for c in j["podSpec"].get("initContainers", [])]
            assert len(set(names)) == len(names)  # Clowder requires names when more than one
            assert all(len(f"{n}-init") <= 63 for n in names)


def environment(job_spec: dict[str, Any]) -> dict[str, str]:
    """The job's literal env values (the Sentry DSN comes from an optional Secret)."""
    return {e["name"]: e["value"] for e in job_spec["podSpec"]["env"] if "value" in e}


def test_the_env_is_a_valid_configuration_reading_the_declared_topics() -> None:
    app = clowdapp()
    topics = [t["topicName"] for t in app["spec"]["kafkaTopics"]]
    for j in app["spec"]["jobs"]:
        cfg = load_config(None, environment(j))
        assert cfg.kafka.topic == topics[0] == "ccx.ocp.results"
        assert cfg.tracker.topic in topics
        assert cfg.kafka.group_id == "ccx_notification_app"
    names = [e["name"] for e in job(app, "run")["podSpec"]["env"]]
    assert "SENTRY_DSN" in names and "ACG_CONFIG" not in names  # Clowder adds ACG_CONFIG
    config_map = yaml.safe_load((ROOT / "deploy/base/configmap.yaml").read_text())
    assert tomllib.loads(config_map["data"]["etl.toml"])["kafka"]["topic"] == topics[0]


def test_the_invocation_runs_the_backfill_job_once_without_touching_the_group() -> None:
    app, cji = backfill()
    assert cji["spec"] == {"appName": app["metadata"]["name"], "jobs": ["backfill"]}
    assert cji["metadata"]["name"].endswith("-t1")
    backfill_job = job(app, "backfill")
    assert "schedule" not in backfill_job  # Clowder makes its Job only for an invocation
    (args,) = containers(backfill_job)
    assert args == ["run", "--from-offset", "0:100", "--until-offset", "0:200", "--no-commit"]
    env = environment(backfill_job)
    assert "ETL_TRACKER__TOPIC" not in env
    main_env = environment(job(clowdapp(), "run"))
    assert {k: main_env[k] for k in env} == env
    assert load_config(None, env).kafka.topic == app["spec"]["kafkaTopics"][0]["topicName"]


def test_both_templates_share_their_common_parameters_defaults() -> None:
    main = parameter_values(load(MAIN), SAMPLE)
    other = parameter_values(load(BACKFILL), BACKFILL_SAMPLE)
    common = set(main) & set(other)
    assert {"IMAGE", "DB_APP_NAME", "INCOMING_TOPIC", "MEMORY_LIMIT"} <= common
    assert {k: main[k] for k in common} == {k: other[k] for k in common}
