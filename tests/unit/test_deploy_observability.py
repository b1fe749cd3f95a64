"""Alerts and dashboard: they name only metrics the job pushes and agree with the manifests.

promtool checks the rules' syntax and runs their unit tests (dev/check-deploy.sh); these tests
check the names against the run's own registry, the exit codes against etl.core.errors and the
thresholds against the CronJob.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from etl.core.counts import RunCounts
from etl.core.errors import PERMANENT_EXIT_CODES, ConfigError
from etl.metrics import registry_for

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "etl-rules.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "etl-dashboard.json"

_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool"}
_KEYWORDS |= {"and", "or", "unless", "offset", "inf", "nan"}


def exported_metrics() -> set[str]:
    """The names a successful run pushes (the success timestamp is registered only then)."""
    counts = RunCounts()
    counts.finish(0, ended_at=1.0, duration=1.0)
    return {family.name for family in registry_for(counts).collect()}


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions or keywords."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\$\w+|\$\{\w+\}", "", text)  # dashboard variables
    names = set()
    for match in re.finditer(r"(?<![\w.])([A-Za-z_:][\w:]*)(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if not call and name.lower() not in _KEYWORDS:
            names.add(name)
    return names


def rules() -> list[dict[str, Any]]:
    return [r for group in yaml.safe_load(RULES.read_text())["groups"] for r in group["rules"]]


def dashboard_expressions() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    for var in dash["templating"]["list"]:
        if var["type"] == "query":
            exprs.append(re.sub(r"label_values\((\w+),.*", r"\1", var["definition"]))
    return exprs


def test_the_name_extraction_sees_metrics_and_skips_functions_and_labels() -> None:
    expr = 'sum without (reason) (etl_a{job="x",mode=""}) / clamp_min(etl_b[5m], 1) > 0.05'
    assert metric_names(expr) == {"etl_a", "etl_b"}
    assert metric_names("time() - etl_c > 3 * 900 and on (job) etl_d") == {"etl_c", "etl_d"}


def test_the_dashboard_names_only_metrics_the_job_exports() -> None:
    exported = exported_metrics()
    exprs = dashboard_expressions()
    assert len(exprs) >= 10
    for expr in exprs:
        names = metric_names(expr)
        assert names, f"no metric in {expr!r}"
        assert names <= exported, f"{expr!r} names {names - exported}, not exported"


def test_the_dashboard_shows_every_metric_the_job_exports() -> None:
    shown = set().union(*(metric_names(e) for e in dashboard_expressions()))
    assert exported_metrics() - shown == set()


def test_the_alerts_name_only_metrics_the_job_exports_and_only_scheduled_runs() -> None:
    exported = exported_metrics()
    for r in rules():
        names = metric_names(r["expr"])
        assert names, r["alert"]
        assert names <= exported, f"{r['alert']} names {names - exported}"
        # every selector excludes backfills and replays, which push with a mode label
        selectors = re.findall(r"etl_\w+(\{[^}]*\})?", r["expr"])
        assert all('mode=""' in s for s in selectors), r["alert"]


def alert(name: str) -> dict[str, Any]:
    return next(r for r in rules() if r["alert"] == name)


def test_the_permanent_failure_alert_uses_the_permanent_exit_codes_a_run_can_push() -> None:
    codes = {int(c) for c in re.findall(r"==\s*(\d+)", alert("EtlRunFailedPermanently")["expr"])}
    # exit 2 is permanent but pushes nothing (etl.metrics): a rule on it could never match
    assert ConfigError.exit_code in PERMANENT_EXIT_CODES
    assert codes == set(PERMANENT_EXIT_CODES) - {ConfigError.exit_code}


def test_every_alert_says_what_to_do_in_the_alerts_page() -> None:
    page = (ROOT / "docs" / "alerts.md").read_text()
    headings = re.findall(r"^### `(\w+)`", page, re.MULTILINE)
    assert headings == [r["alert"] for r in rules()]
    for name in headings:
        section = page.split(f"### `{name}`", 1)[1].split("\n### ", 1)[0]
        assert "What to do" in section, name


def test_the_alert_thresholds_follow_the_cronjob() -> None:
    cron = yaml.safe_load((ROOT / "deploy" / "base" / "cronjob.yaml").read_text())["spec"]
    deadline = cron["jobTemplate"]["spec"]["activeDeadlineSeconds"]
    period = int(re.fullmatch(r"\*/(\d+) .*", cron["schedule"]).group(1)) * 60  # type: ignore[union-attr]
    assert f"> 0.8 * {deadline}" in alert("EtlRunNearDeadline")["expr"]
    assert f"> 3 * {period}" in alert("EtlNoRecentSuccess")["expr"]


def test_the_metrics_documentation_names_every_metric_and_alert() -> None:
    page = (ROOT / "docs" / "operations.md").read_text()
    section = page.split("\n## Metrics", 1)[1].split("\n## ", 1)[0]
    for name in exported_metrics():
        assert f"`{name}" in section, name
    for r in rules():
        assert f"`{r['alert']}`" in section, r["alert"]
