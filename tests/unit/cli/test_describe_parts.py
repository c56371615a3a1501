"""Pieces of ``kbox describe``: field labels (``podIP`` → ``Pod IP``), the generic describer's
layout and alignment (padding 2, blocks broken by lines without a tab), annotations that are long or
multi-line, event intervals, quantities printed back canonically, and the QoS class."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from kbox.cli.kube import describe, describers, nodesummary

NOW = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    ("field", "label"),
    [
        ("creationTimestamp", "Creation Timestamp"),
        ("podIP", "Pod IP"),
        ("apiVersion", "API Version"),
        ("uid", "UID"),
        ("holderIdentity", "Holder Identity"),
        ("leaseDurationSeconds", "Lease Duration Seconds"),
        ("HTTPServer", "HTTPServer"),
        ("a.b/c", "a.b/c"),
        ("with-dash", "With - Dash"),
    ],
)
def test_smart_label(field: str, label: str) -> None:
    assert describe.smart_label(field) == label


def test_generic_describer_layout() -> None:
    obj = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {
            "name": "w1",
            "namespace": "ns",
            "labels": {"b": "2", "a": "1"},
            "annotations": {
                "long": "y" * 200,
                "multi": "one\ntwo\n",
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
            },
            "managedFields": [{"manager": "x"}],
            "uid": "u-1",
        },
        "spec": {"size": 3, "ports": [80, 443], "items": [{"name": "a"}], "enabled": True, "ratio": 0.5},
    }
    event = {
        "type": "Normal",
        "reason": "Synced",
        "message": " done ",
        "source": {"component": "widget-controller"},
        "count": 3,
        "firstTimestamp": "2026-01-01T11:50:00Z",
        "lastTimestamp": "2026-01-01T11:59:00Z",
    }
    text = describe.describe_generic(obj, [event], NOW)
    long_value = "y" * 138
    assert text == (
        "Name:         w1\n"
        "Namespace:    ns\n"
        "Labels:       a=1\n"
        "              b=2\n"
        "Annotations:  long:\n"
        f"                {long_value}...\n"
        "              multi:\n"
        "                one\n"
        "                two\n"
        "API Version:  example.com/v1\n"
        "Kind:         Widget\n"
        "Metadata:\n"
        "  UID:  u-1\n"
        "Spec:\n"
        "  Enabled:  true\n"
        "  Items:\n"
        "    Name:  a\n"
        "  Ports:\n"
        "    80\n"
        "    443\n"
        "  Ratio:  0.5\n"
        "  Size:   3\n"
        "Events:\n"
        "  Type    Reason  Age                From               Message\n"
        "  ----    ------  ----               ----               -------\n"
        "  Normal  Synced  60s (x3 over 10m)  widget-controller  done\n"
    )


def test_no_events_and_no_labels() -> None:
    text = describe.describe_generic({"metadata": {"name": "x"}}, [], NOW)
    assert (
        text
        == "Name:         x\nNamespace:    \nLabels:       <none>\nAnnotations:  <none>\nMetadata:\nEvents:  <none>\n"
    )


@pytest.mark.parametrize(
    ("value", "binary", "text"),
    [
        (Decimal("0"), False, "0"),
        (Decimal("0.1"), False, "100m"),
        (Decimal("0.35"), False, "350m"),
        (Decimal("2"), False, "2"),
        (Decimal("2000"), False, "2k"),
        (Decimal("1500"), False, "1500"),
        (Decimal(192 * 1024 * 1024), True, "192Mi"),
        (Decimal(1536), True, "1536"),
        (Decimal(1024), True, "1Ki"),
    ],
)
def test_format_quantity(value: Decimal, binary: bool, text: str) -> None:
    assert nodesummary.format_quantity(value, binary=binary) == text


def test_amounts_keep_the_style_of_the_first_quantity() -> None:
    total = nodesummary.Amount()
    total.add("64Mi")
    total.add("128Mi")
    assert str(total) == "192Mi"
    cpu = nodesummary.Amount()
    cpu.add("100m")
    cpu.add("0.25")
    assert str(cpu) == "350m"


def test_qos_class() -> None:
    def spec(resources: dict[str, dict[str, str]]) -> dict[str, object]:
        return {"containers": [{"name": "c", "resources": resources}]}

    assert describers.qos_class(spec({})) == "BestEffort"
    same = {"cpu": "1", "memory": "1Gi"}
    assert describers.qos_class(spec({"limits": same, "requests": same})) == "Guaranteed"
    assert describers.qos_class(spec({"limits": same})) == "Guaranteed"
    assert describers.qos_class(spec({"requests": {"cpu": "100m"}})) == "Burstable"


def test_probe_lines_as_kubectl_132() -> None:
    probe = {
        "httpGet": {"path": "/h", "port": 8080, "scheme": "HTTPS"},
        "periodSeconds": 5,
        "failureThreshold": 3,
    }
    assert describers.describe_probe(probe) == (
        "http-get https://:8080/h delay=0s timeout=0s period=5s #success=0 #failure=3"
    )
    assert describers.describe_probe({"exec": {"command": ["cat", "/x"]}}).startswith(
        "exec [cat /x] delay=0s"
    )
