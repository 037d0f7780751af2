"""Prometheus metrics: the daemon against the real Dovecot and SMTP sink, scraped over HTTP;
the `[metrics]` settings; the sample alerts and dashboard name only metrics that exist."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
import urllib.request
from collections import Counter
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from daemon.config import Config, ConfigError, parse_config
from daemon.mail.values import Outcome
from daemon.service.metrics import DISPOSITIONS, Metrics, ack_latency
from models.database import Database
from tests.conftest import REPO, Setup, make_mail, wait_until
from tests.mailstack import free_port

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _enable_metrics(setup: Setup, port: int) -> None:
    with setup.config_path.open("a", encoding="utf-8") as handle:
        handle.write(f'\n[metrics]\nenabled = true\nlisten = "127.0.0.1:{port}"\n')


def _scrape(port: int) -> Samples:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, no proxy
    with opener.open(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode("utf-8")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def _stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


def _wait_scraped(
    port: int, ready: list[tuple[str, dict[str, str], float]], timeout: float = 30.0
) -> Samples:
    """Scrape until every (name, labels, value) in `ready` holds (the database figures are
    re-read every few seconds); returns the last scrape."""
    found: Samples = {}

    def holds() -> bool:
        nonlocal found
        try:
            found = _scrape(port)
        except OSError:
            return False  # not listening yet
        return all(_value(found, name, **labels) == value for name, labels, value in ready)

    wait_until(holds, timeout, what=f"metrics {ready}")
    return found


def _last_sync(port: int) -> float:
    found = _value(_scrape(port), "candour_mailbox_last_sync_timestamp_seconds", mailbox="main")
    assert found is not None  # 0 before the first sync
    return found


def test_the_daemon_counts_what_happened_and_serves_it_on_loopback(setup: Setup) -> None:
    port = free_port()
    _enable_metrics(setup, port)
    started = time.time()
    daemon = setup.start_daemon()
    try:
        appended = time.time()
        for n in (1, 2):
            setup.append(make_mail(sender=f"Person {n} <metrics.{n}@example.net>")[0])
        robot, _ = make_mail(
            sender="Pat Away <pat.metrics@example.net>",
            subject="Automatic reply: your letter",
            body="I am out of the office until Monday.",
            headers={"Auto-Submitted": "auto-replied"},
        )
        setup.append(robot)
        setup.wait_outgoing(2)
        acked = time.time()
        samples = _wait_scraped(
            port,
            [
                ("candour_messages_total", {"mailbox": "main", "disposition": "case"}, 2),
                ("candour_messages_total", {"mailbox": "main", "disposition": "automatic"}, 1),
                ("candour_ack_seconds_count", {"mailbox": "main"}, 2),
                ("candour_outbox_messages", {"status": "sent"}, 2),
            ],
        )
        labels = Counter(str(case["label"]) for case in setup.cases())
        # Set when a cycle ends: the first one may still be scanning the label folders.
        wait_until(lambda: _last_sync(port) >= started, what="mailbox synced")
        last_sync = _last_sync(port)
    finally:
        status, log = _stop(daemon)
    assert status == 0, log

    def value(name: str, **labels: str) -> float | None:
        return _value(samples, name, **labels)

    for other in ("follow-up", "staff", "duplicate", "quarantined"):
        assert value("candour_messages_total", mailbox="main", disposition=other) == 0
    assert {
        label: value("candour_cases_total", mailbox="main", label=label) for label in labels
    } == {label: float(count) for label, count in labels.items()}
    # Arrival (INTERNALDATE, whole seconds) to the sink's acceptance, for each of the two.
    total = value("candour_ack_seconds_sum", mailbox="main")
    assert total is not None
    assert 0 <= total <= 2 * (acked - appended + 1)
    assert value("candour_ack_seconds_bucket", mailbox="main", le="+Inf") == 2
    assert value("candour_outbox_messages", status="pending") == 0
    assert value("candour_outbox_oldest_pending_seconds") == 0
    assert value("candour_open_cases", mailbox="main") == 2
    assert value("candour_overdue_cases", mailbox="main", kind="acknowledgement") == 0
    assert value("candour_quarantined_messages", mailbox="main") == 0
    assert value("candour_imap_reconnects_total", mailbox="main") == 0
    assert started <= last_sync <= time.time()
    assert value("candour_workers") == 1
    assert value("candour_model_info", version="shipped") == 1
    assert '"metrics.serving"' in log
    assert "metrics.1@example.net" not in log


def test_a_reconnect_after_the_server_drops_the_connection_is_counted(setup: Setup) -> None:
    port = free_port()
    _enable_metrics(setup, port)
    daemon = setup.start_daemon()
    try:
        setup.append(make_mail(sender="A Person <metrics.kick@example.net>")[0])
        setup.wait_outgoing(1)
        conf = str(setup.dovecot.conf)
        subprocess.run(["doveadm", "-c", conf, "kick", setup.user], check=True, timeout=30)
        _wait_scraped(port, [("candour_imap_reconnects_total", {"mailbox": "main"}, 1)])
        # Connected again: mail still flows.
        setup.append(make_mail(sender="B Person <metrics.after@example.net>")[0])
        setup.wait_outgoing(2)
        _wait_scraped(
            port, [("candour_messages_total", {"mailbox": "main", "disposition": "case"}, 2)]
        )
    finally:
        status, log = _stop(daemon)
    assert status == 0, log


def test_metrics_are_off_by_default_and_no_port_is_opened(setup: Setup) -> None:
    assert setup.config.metrics.enabled is False
    daemon = setup.start_daemon()
    try:
        setup.append(make_mail(sender="A Person <metrics.off@example.net>")[0])
        setup.wait_outgoing(1)  # the daemon is up and working
        process = psutil.Process(daemon.pid)
        listening = [
            (proc.pid, conn.laddr)
            for proc in (process, *process.children(recursive=True))
            for conn in proc.net_connections(kind="inet")
            if conn.status == psutil.CONN_LISTEN
        ]
    finally:
        status, log = _stop(daemon)
    assert status == 0, log
    assert listening == []
    assert "metrics.serving" not in log


def test_an_address_in_use_is_logged_and_the_daemon_carries_on(setup: Setup) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        _enable_metrics(setup, taken.getsockname()[1])
        daemon = setup.start_daemon()
        try:
            setup.append(make_mail(sender="A Person <metrics.busy@example.net>")[0])
            setup.wait_outgoing(1)
        finally:
            status, log = _stop(daemon)
    assert status == 0, log
    assert '"metrics.unavailable"' in log


# -- the settings ----------------------------------------------------------------------------


def _config(metrics: dict[str, object]) -> Config:
    return parse_config(
        {
            "metrics": metrics,
            "smtp": {"host": "127.0.0.1"},
            "mailbox": [
                {
                    "name": "main",
                    "address": "complaints@example.org",
                    "organisation": "Example Trust",
                    "imap": {"host": "127.0.0.1", "username": "u"},
                }
            ],
        },
        "candour.toml",
    )


@pytest.mark.parametrize("listen", ["127.0.0.1:9464", "127.0.0.2:80", "[::1]:9464", "localhost:1"])
def test_loopback_addresses_are_accepted(listen: str) -> None:
    config = _config({"enabled": True, "listen": listen})
    assert config.metrics.listen == listen


@pytest.mark.parametrize(
    ("listen", "why"),
    [
        ("0.0.0.0:9464", "0.0.0.0 is not a loopback address"),
        ("192.0.2.7:9464", "192.0.2.7 is not a loopback address"),
        ("metrics.example.org:9464", "metrics.example.org is not a loopback address"),
        ("127.0.0.1", "must be host:port"),
        ("127.0.0.1:http", "Port could not be cast"),
        ("127.0.0.1:70000", "Port out of range"),
        ("http://127.0.0.1:9464/metrics", "must be host:port"),
    ],
)
def test_a_wrong_listen_address_is_an_error_naming_the_key(listen: str, why: str) -> None:
    with pytest.raises(ConfigError) as error:
        _config({"enabled": True, "listen": listen})
    assert "candour.toml: metrics.listen: " in str(error.value)
    assert why in str(error.value)


def test_another_address_only_when_explicitly_allowed() -> None:
    config = _config({"enabled": True, "listen": "0.0.0.0:9464", "allow_non_loopback": True})
    assert config.metrics.listen == "0.0.0.0:9464"
    with pytest.raises(ConfigError, match="unknown key"):
        _config({"enable": True})


def test_the_example_config_documents_the_metrics_table() -> None:
    text = (REPO / "config.example.toml").read_text(encoding="utf-8")
    assert "[metrics]" in text
    assert 'listen = "127.0.0.1:9464"' in text


# -- pure parts ------------------------------------------------------------------------------


def test_every_outcome_has_a_disposition_and_ack_latency_is_never_negative() -> None:
    from datetime import UTC, datetime, timedelta

    assert set(DISPOSITIONS) == set(Outcome)
    assert len(set(DISPOSITIONS.values())) == len(Outcome)
    at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert ack_latency(at, at + timedelta(seconds=3.5)) == 3.5
    assert ack_latency(at + timedelta(seconds=1), at) == 0.0


# -- the sample alerts and dashboard ---------------------------------------------------------

CONTRIB = REPO / "contrib"
NAME = re.compile(r"\bcandour_[a-z0-9_]+")
SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "info": ("_info",),
    "gauge": ("",),
}


def _exposed_names(tmp_path: Path) -> set[str]:
    """Every series name a scrape can show, from the registry's families (a labelled
    counter or histogram shows no sample until it has been counted)."""
    db = Database(f"sqlite:///{tmp_path / 'candour.db'}")
    db.upgrade()
    try:
        metrics = Metrics(db, ["main"], tmp_path)
        return {
            family.name + suffix
            for family in metrics.registry.collect()
            for suffix in SUFFIXES[family.type]
        }
    finally:
        db.dispose()


def test_the_alerts_are_well_formed_and_use_only_metrics_that_exist(tmp_path: Path) -> None:
    exposed = _exposed_names(tmp_path)
    document = yaml.safe_load((CONTRIB / "prometheus-alerts.yml").read_text(encoding="utf-8"))
    rules = [rule for group in document["groups"] for rule in group["rules"]]
    assert {rule["alert"] for rule in rules} >= {
        "CandourOutboxStuck",
        "CandourAcknowledgementsOverdue",
        "CandourMailboxNotSynced",
        "CandourNoWorker",
        "CandourQuarantineGrowing",
        "CandourAckLatencyHigh",
    }
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        used = set(NAME.findall(rule["expr"]))
        assert used, rule["alert"]
        assert used <= exposed, (rule["alert"], used - exposed)


def test_the_dashboard_uses_only_metrics_that_exist(tmp_path: Path) -> None:
    exposed = _exposed_names(tmp_path)
    dashboard = json.loads((CONTRIB / "grafana-candour.json").read_text(encoding="utf-8"))
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    used = {name for expr in exprs for name in NAME.findall(expr)}
    assert len(exprs) >= 8
    assert used <= exposed, used - exposed
    assert exposed - used <= {"candour_ack_seconds_count", "candour_ack_seconds_sum"}
