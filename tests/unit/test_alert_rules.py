"""deploy/prometheus: the alert rules pass `promtool check rules` and every `promtool test
rules` file in deploy/prometheus/tests/, and each alert is tested both firing and quiet."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from tests.fixtures import monitoring

EXPECTED_ALERTS = {
    "ZenotiIngressFailing",
    "ZenotiSourceSilent",
    "ZenotiSignatureFailures",
    "ZenotiBacklogOld",
    "ZenotiDeadLettersRising",
    "ZenotiNoWorkers",
    "ZenotiMetricsDown",
}


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [monitoring.binary("promtool"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=monitoring.PROMETHEUS_DIR,
    )


def test_rules_and_scrape_configuration_are_valid():
    """promtool accepts alerts.yml, and prometheus.yml with the rule files it names."""
    for args in (("check", "rules", "alerts.yml"), ("check", "config", "prometheus.yml")):
        result = promtool(*args)
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("test_file", monitoring.RULE_TESTS, ids=lambda path: path.stem)
def test_promtool_rule_tests_pass(test_file):
    """Each rule test file passes: the alert fires when and only when it should, with these
    labels and annotations rendered."""
    result = promtool("test", "rules", str(test_file))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_tested_firing_and_quiet():
    """The rule tests cover every alert the issue asks for (and no more or fewer than
    alerts.yml has), each with a case where it fires and one where it must not."""
    assert {rule["alert"] for rule in monitoring.alert_rules()} == EXPECTED_ALERTS
    firing, quiet = set(), set()
    for path in monitoring.RULE_TESTS:
        document = yaml.safe_load(path.read_text())
        assert document["rule_files"] == ["../alerts.yml"], path.name
        for case in document["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert firing == EXPECTED_ALERTS
    assert quiet == EXPECTED_ALERTS


def test_every_alert_says_how_urgent_and_what_to_do():
    """Each alert has a severity (page or warning) and a summary and a description; only
    ZenotiIngressFailing pages (Zenoti switches a webhook off after 20 failures in a row)."""
    paging = set()
    for rule in monitoring.alert_rules():
        assert rule["labels"]["severity"] in {"page", "warning"}, rule["alert"]
        assert set(rule["annotations"]) == {"summary", "description"}, rule["alert"]
        if rule["labels"]["severity"] == "page":
            paging.add(rule["alert"])
    assert paging == {"ZenotiIngressFailing"}


def test_rule_tests_fail_when_an_alert_is_wrong(tmp_path):
    """promtool test rules reports a failure (so the tests above can fail): the same test file
    against a rule file whose ZenotiNoWorkers never fires."""
    (tmp_path / "tests").mkdir()
    broken = monitoring.ALERTS.read_text().replace(
        "zenoti_ingest_workers_alive == 0", "zenoti_ingest_workers_alive < 0"
    )
    assert broken != monitoring.ALERTS.read_text()
    (tmp_path / "alerts.yml").write_text(broken)
    test_file = tmp_path / "tests" / "no_workers.yml"
    test_file.write_text((monitoring.PROMETHEUS_DIR / "tests" / "no_workers.yml").read_text())
    result = promtool("test", "rules", str(test_file))
    assert result.returncode != 0
    assert "ZenotiNoWorkers" in result.stdout + result.stderr


def test_readme_says_what_each_alert_means_and_what_to_do():
    """README's "### Alerts" has an entry for every alert, each with a *Do:*."""
    readme = (monitoring.ROOT / "README.md").read_text()
    section = readme.split("\n### Alerts\n", 1)[1].split("\n#", 1)[0]
    entries = {
        entry.split("**", 2)[1].strip("`"): entry
        for entry in section.split("\n* ")[1:]
        if entry.startswith("**")
    }
    assert entries.keys() == EXPECTED_ALERTS
    for name, entry in entries.items():
        assert "*Do:*" in entry, name
