"""Label and field selectors: syntax, matching, canonical strings, per-kind fields and error messages.

The messages are kube-apiserver's (apimachinery ``pkg/labels``, ``pkg/fields`` and the field label
conversions of ``pkg/apis/*/v1``), returned as 400 BadRequest for ``?labelSelector=``/``?fieldSelector=``.
"""

from __future__ import annotations

from typing import Any

import pytest

from kbox.api import selectors as s
from kbox.api.errors import StatusError

NAME_PART_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex "
    "used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


def bad_request(call: Any, *args: Any) -> str:
    with pytest.raises(StatusError) as info:
        call(*args)
    assert (info.value.code, info.value.reason) == (400, "BadRequest")
    return info.value.message


# --- label selector syntax ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("", ""),
        ("app=web", "app=web"),
        ("app==web", "app==web"),
        ("app!=web", "app!=web"),
        ("kubernetes.io/cluster-service=true", "kubernetes.io/cluster-service=true"),
        ("tier in (b,a)", "tier in (a,b)"),
        ("tier notin (x)", "tier notin (x)"),
        ("canary", "canary"),
        ("!canary", "!canary"),
        ("  b = 1 ,\ta in ( x , y )\n", "a in (x,y),b=1"),
        ("x in (foo,,baz),y,z notin ()", "x in (,baz,foo),y,z notin ()"),
        ("a in (x,)", "a in (,x)"),
        ("a in (,x)", "a in (,x)"),
        ("a=", "a="),
        ("a>5", "a>5"),
        ("a<5", "a<5"),
        ("k in (in,notin)", "k in (in,notin)"),
        ("in", "in"),
    ],
)
def test_label_syntax_and_canonical_form(text: str, canonical: str) -> None:
    assert str(s.parse_labels(text)) == canonical


def test_requirements_are_sorted_by_key() -> None:
    selector = s.parse_labels("b=2,a=1,!c")
    assert [r.key for r in selector.requirements] == ["a", "b", "c"]
    assert selector.requirements[0] == s.Requirement("a", s.EQUALS, ("1",))
    assert selector.requirements[2].operator == s.DOES_NOT_EXIST


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        ("a in", "unable to parse requirement: found '' expected: '('"),
        ("a in x", "unable to parse requirement: found 'x' expected: '('"),
        ("a in (", "unable to parse requirement: found '', expected: ',', ')' or identifier"),
        ("a in (x y)", "unable to parse requirement: found 'y', expected: ',' or ')'"),
        ("a in (x,=)", "unable to parse requirement: found '=', expected: ',', or identifier"),
        ("a==(", "unable to parse requirement: found '(', expected: identifier"),
        ("! =a", "unable to parse requirement: found '=', expected: identifier"),
        ("!=a", "found '!=', expected: !, identifier, or 'end of string'"),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ("!a=b", "found '=', expected: ',' or 'end of string'"),
        ("a,", "found '', expected: identifier after ','"),
        ("a,,b", "found ',', expected: identifier after ','"),
        (",a", "found ',', expected: !, identifier, or 'end of string'"),
        ("(", "found '(', expected: !, identifier, or 'end of string'"),
        (
            "a>b",
            "unable to parse requirement: values[0]: Invalid value: \"b\": for 'Gt', 'Lt' operators, the value "
            "must be an integer",
        ),
    ],
)
def test_label_syntax_errors(text: str, message: str) -> None:
    assert bad_request(s.parse_labels, text) == message


def test_invalid_label_key_message() -> None:
    assert bad_request(s.parse_labels, "-a=b") == (
        f'unable to parse requirement: <nil>: Invalid value: "-a": {NAME_PART_MSG}'
    )
    assert bad_request(s.parse_labels, "a/b/c").startswith(
        'unable to parse requirement: <nil>: Invalid value: "a/b/c": a qualified name must consist'
    )


def test_invalid_label_value_messages() -> None:
    assert bad_request(s.parse_labels, "a=-b") == (
        f'unable to parse requirement: values[0][a]: Invalid value: "-b": {VALUE_MSG}'
    )
    assert bad_request(s.parse_labels, "a in (-y,-x)") == (
        f'unable to parse requirement: [values[0][a]: Invalid value: "-x": {VALUE_MSG}, '
        f'values[1][a]: Invalid value: "-y": {VALUE_MSG}]'
    )


def test_quoting_in_messages_is_gos() -> None:
    assert bad_request(s.parse_labels, 'a="x"').startswith(
        'unable to parse requirement: values[0][a]: Invalid value: "\\"x\\""'
    )


def test_huge_selectors_are_a_clean_400() -> None:
    text = ",".join(f"k{i}=v" for i in range(20000))
    assert bad_request(s.parse_labels, text).startswith("label selector is too long")
    assert bad_request(s.parse_fields, "a=" + "x" * 70000).startswith("field selector is too long")
    assert len(s.parse_labels(",".join(f"k{i}=v" for i in range(1000))).requirements) == 1000


# --- label matching ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("app=web", {"app": "web"}, True),
        ("app=web", {"app": "db"}, False),
        ("app=web", {}, False),
        ("app==web", {"app": "web"}, True),
        ("app!=web", {"app": "db"}, True),
        ("app!=web", {}, True),
        ("app!=web", {"app": "web"}, False),
        ("tier in (a,b)", {"tier": "b"}, True),
        ("tier in (a,b)", {}, False),
        ("tier notin (a,b)", {}, True),
        ("tier notin (a,b)", {"tier": "a"}, False),
        ("canary", {"canary": ""}, True),
        ("canary", {}, False),
        ("!canary", {}, True),
        ("!canary", {"canary": "x"}, False),
        ("a=", {"a": ""}, True),
        ("a=", {}, False),
        ("a in (,x)", {"a": ""}, True),
        ("a>5", {"a": "6"}, True),
        ("a>5", {"a": "5"}, False),
        ("a>5", {"a": "six"}, False),
        ("a>5", {}, False),
        ("a<5", {"a": "-3"}, True),
        ("app=web,!canary", {"app": "web"}, True),
        ("app=web,!canary", {"app": "web", "canary": "1"}, False),
    ],
)
def test_label_matching(text: str, labels: dict[str, str], expected: bool) -> None:
    assert s.parse_labels(text).matches(labels) is expected


def test_empty_selector_matches_everything() -> None:
    everything = s.parse_labels("")
    assert everything.empty
    assert everything.matches(None)
    assert everything.matches({"a": "b"})
    assert s.LabelSelector.everything() == everything


def test_requires_exact_match() -> None:
    selector = s.parse_labels("a=1,b in (2),c in (3,4),d!=5")
    assert selector.requires_exact_match("a") == "1"
    assert selector.requires_exact_match("b") == "2"
    assert selector.requires_exact_match("c") is None
    assert selector.requires_exact_match("d") is None
    assert selector.requires_exact_match("e") is None


def test_selector_from_set() -> None:
    selector = s.selector_from_set({"b": "2", "a": "1"})
    assert str(selector) == "a=1,b=2"
    assert selector.matches({"a": "1", "b": "2", "c": "3"})
    assert s.selector_from_set(None).empty


# --- metav1.LabelSelector ----------------------------------------------------------------------------


def test_nil_label_selector_matches_nothing_and_empty_matches_everything() -> None:
    nothing = s.from_label_selector(None)
    assert not nothing.matches({}) and not nothing.matches({"a": "b"})
    assert not nothing.empty and nothing.matches_nothing
    assert str(nothing) == ""
    everything = s.from_label_selector({})
    assert everything.empty and everything.matches({"a": "b"})
    assert s.from_label_selector({"matchLabels": {}, "matchExpressions": []}).empty


def test_label_selector_object_string_is_sorted_for_scale_status() -> None:
    selector = s.from_label_selector(
        {
            "matchLabels": {"app": "web", "tier": "front"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "dev"]},
                {"key": "zone", "operator": "NotIn", "values": ["b"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "owner", "operator": "Exists"},
            ],
        }
    )
    assert str(selector) == "app=web,!canary,env in (dev,prod),owner,tier=front,zone notin (b)"
    assert selector.matches({"app": "web", "tier": "front", "env": "dev", "owner": "me"})
    assert not selector.matches({"app": "web", "tier": "front", "env": "dev"})


def test_invalid_label_selector_object_is_a_422_with_causes() -> None:
    with pytest.raises(StatusError) as info:
        s.from_label_selector({"matchExpressions": [{"key": "a", "operator": "Near"}]}, "spec.selector")
    err = info.value
    assert (err.code, err.reason) == (422, "Invalid")
    assert (
        err.message
        == 'spec.selector.matchExpressions[0].operator: Invalid value: "Near": not a valid selector operator'
    )
    assert err.details["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: "Near": not a valid selector operator',
            "field": "spec.selector.matchExpressions[0].operator",
        }
    ]


# --- field selectors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("", ""),
        ("metadata.name=X", "metadata.name=X"),
        ("metadata.name==X", "metadata.name=X"),
        ("status.phase!=Failed", "status.phase!=Failed"),
        (
            "spec.nodeName=N,status.phase!=Succeeded,status.phase!=Failed",
            "spec.nodeName=N,status.phase!=Failed,status.phase!=Succeeded",
        ),
        ("involvedObject.namespace=", "involvedObject.namespace="),
        ("a=b\\,c", "a=b\\,c"),
        ("a=x\\=y\\\\", "a=x\\=y\\\\"),
        ("a=1,,b=2", "a=1,b=2"),
    ],
)
def test_field_syntax(text: str, canonical: str) -> None:
    assert str(s.parse_fields(text)) == canonical


def test_field_requirements_and_unescaping() -> None:
    selector = s.parse_fields("metadata.namespace=ns,a!=x\\,y")
    assert selector.requirements == (
        s.FieldRequirement("a", "!=", "x,y"),
        s.FieldRequirement("metadata.namespace", "=", "ns"),
    )
    assert selector.requires_exact_match("metadata.namespace") == "ns"
    assert selector.requires_exact_match("a") is None
    assert selector.requires_exact_match("metadata.name") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("abc", "invalid selector: 'abc'; can't understand 'abc'"),
        ("a=1,b", "invalid selector: 'a=1,b'; can't understand 'b'"),
        ("a=b=c", "invalid field selector: unescaped character in value: 61"),
        ("a=b\\x", "invalid field selector: invalid escape sequence: \\x"),
        ("a=b\\", "invalid field selector: invalid escape sequence: \\"),
    ],
)
def test_field_syntax_errors(text: str, message: str) -> None:
    assert bad_request(s.parse_fields, text) == message


def test_field_matching_reads_missing_fields_as_empty() -> None:
    fields = {"metadata.name": "a", "status.phase": "Running"}
    assert s.parse_fields("").matches(fields)
    assert s.parse_fields("metadata.name=a,status.phase!=Failed").matches(fields)
    assert not s.parse_fields("status.phase!=Running").matches(fields)
    assert s.parse_fields("spec.nodeName=").matches(fields)
    assert not s.parse_fields("spec.nodeName!=").matches(fields)


# --- per-kind field labels ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("group", "kind", "text"),
    [
        (
            "",
            "Pod",
            "spec.nodeName=n,spec.restartPolicy=Always,spec.schedulerName=s,spec.serviceAccountName=d",
        ),
        (
            "",
            "Pod",
            "spec.hostNetwork=true,status.phase=Running,status.podIP=1.2.3.4,status.nominatedNodeName=n",
        ),
        ("", "Pod", "metadata.name=a,metadata.namespace=b"),
        ("", "Node", "metadata.name=n,spec.unschedulable=false"),
        ("", "Namespace", "metadata.name=n,status.phase=Active"),
        ("", "Secret", "type=Opaque,metadata.namespace=d"),
        ("", "Service", "spec.clusterIP=None,spec.type=ClusterIP"),
        ("", "ReplicationController", "status.replicas=1"),
        (
            "",
            "Event",
            "involvedObject.uid=u,involvedObject.name=n,involvedObject.namespace=,involvedObject.kind=",
        ),
        (
            "",
            "Event",
            "involvedObject.apiVersion=v1,involvedObject.resourceVersion=1,involvedObject.fieldPath=f",
        ),
        ("", "Event", "reason=Started,reportingComponent=kubelet,source=kubelet,type=Normal"),
        (
            "events.k8s.io",
            "Event",
            "regarding.kind=Pod,regarding.name=p,reportingController=c,reason=r,type=t",
        ),
        ("apps", "ReplicaSet", "status.replicas=3"),
        ("batch", "Job", "status.successful=1"),
        ("certificates.k8s.io", "CertificateSigningRequest", "spec.signerName=x"),
        ("", "ConfigMap", "metadata.name=a,metadata.namespace=b"),
        ("rbac.authorization.k8s.io", "ClusterRole", "metadata.namespace="),
    ],
)
def test_supported_field_labels(group: str, kind: str, text: str) -> None:
    selector = s.parse_fields(text)
    assert s.check_fields(group, kind, selector) == selector


@pytest.mark.parametrize(
    ("group", "kind", "text", "message"),
    [
        ("", "Pod", "status.hostIP=1", "field label not supported: status.hostIP"),
        ("", "Node", "metadata.namespace=", "field label not supported: metadata.namespace"),
        ("", "Namespace", "metadata.namespace=x", "field label not supported: metadata.namespace"),
        ("", "Event", "regarding.kind=Pod", "field label not supported: regarding.kind"),
        (
            "events.k8s.io",
            "Event",
            "involvedObject.kind=Pod",
            "field label not supported: involvedObject.kind",
        ),
        ("events.k8s.io", "Event", "source=x", "field label not supported: source"),
        (
            "batch",
            "Job",
            "status.succeeded=1",
            'field label "status.succeeded" not supported for batchv1.Job',
        ),
        (
            "",
            "ConfigMap",
            "data.key=1",
            '"data.key" is not a known field selector: only "metadata.name", "metadata.namespace"',
        ),
        ("", "Pod", "z=1,status.hostIP=1,a=1", "field label not supported: a"),
    ],
)
def test_unsupported_field_labels(group: str, kind: str, text: str, message: str) -> None:
    assert bad_request(s.check_fields, group, kind, s.parse_fields(text)) == message


def test_pod_spec_host_is_an_alias_of_node_name() -> None:
    checked = s.check_fields("", "Pod", s.parse_fields("spec.host=n1"))
    assert str(checked) == "spec.nodeName=n1"


# --- selectable field values -------------------------------------------------------------------------

POD: dict[str, Any] = {
    "metadata": {"name": "web-1", "namespace": "default"},
    "spec": {
        "nodeName": "n1",
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "hostNetwork": True,
    },
    "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.5"}], "podIP": "10.0.0.5"},
}


def test_pod_fields() -> None:
    assert s.field_set("", "Pod", POD) == {
        "metadata.name": "web-1",
        "metadata.namespace": "default",
        "spec.nodeName": "n1",
        "spec.restartPolicy": "Always",
        "spec.schedulerName": "default-scheduler",
        "spec.serviceAccountName": "",
        "spec.hostNetwork": "true",
        "status.phase": "Running",
        "status.podIP": "10.0.0.5",
        "status.nominatedNodeName": "",
    }
    bare = s.field_set("", "Pod", {"metadata": {"name": "p"}, "status": {"podIP": "10.0.0.9"}})
    assert bare["spec.hostNetwork"] == "false"
    assert bare["status.podIP"] == "10.0.0.9"
    assert bare["metadata.namespace"] == ""


def test_kubectl_node_pods_selector_against_pod_fields() -> None:
    selector = s.check_fields(
        "", "Pod", s.parse_fields("spec.nodeName=n1,status.phase!=Succeeded,status.phase!=Failed")
    )
    assert selector.matches(s.field_set("", "Pod", POD))
    assert not selector.matches(s.field_set("", "Pod", {**POD, "status": {"phase": "Failed"}}))


def test_other_kinds_fields() -> None:
    node = s.field_set("", "Node", {"metadata": {"name": "n1"}, "spec": {"unschedulable": True}})
    assert node == {"metadata.name": "n1", "metadata.namespace": "", "spec.unschedulable": "true"}
    assert s.field_set("", "Node", {"metadata": {"name": "n1"}})["spec.unschedulable"] == "false"
    assert (
        s.field_set("", "Namespace", {"metadata": {"name": "a"}, "status": {"phase": "Active"}})[
            "status.phase"
        ]
        == "Active"
    )
    assert s.field_set("", "Secret", {"metadata": {"name": "a"}, "type": "Opaque"})["type"] == "Opaque"
    service = s.field_set(
        "", "Service", {"metadata": {"name": "a"}, "spec": {"clusterIP": "None", "type": "ClusterIP"}}
    )
    assert (service["spec.clusterIP"], service["spec.type"]) == ("None", "ClusterIP")
    assert (
        s.field_set("apps", "ReplicaSet", {"metadata": {}, "status": {"replicas": 3}})["status.replicas"]
        == "3"
    )
    assert s.field_set("apps", "ReplicaSet", {"metadata": {}})["status.replicas"] == "0"
    assert (
        s.field_set("batch", "Job", {"metadata": {}, "status": {"succeeded": 1}})["status.successful"] == "1"
    )
    assert s.field_set("", "ConfigMap", {"metadata": {"name": "c", "namespace": "d"}}) == {
        "metadata.name": "c",
        "metadata.namespace": "d",
    }


def test_core_event_fields_and_source_fallback() -> None:
    event = {
        "metadata": {"name": "n1.abc", "namespace": "default"},
        "involvedObject": {"kind": "Node", "name": "n1", "uid": "u1", "apiVersion": "v1"},
        "reason": "NodeReady",
        "type": "Normal",
        "reportingComponent": "kubelet",
    }
    fields = s.field_set("", "Event", event)
    assert fields["involvedObject.namespace"] == ""
    assert fields["involvedObject.kind"] == "Node"
    assert fields["source"] == "kubelet"
    assert s.field_set("", "Event", {**event, "source": {"component": "x"}})["source"] == "x"
    describe = (
        "involvedObject.uid=u1,involvedObject.name=n1,involvedObject.namespace=,involvedObject.kind=Node"
    )
    assert s.check_fields("", "Event", s.parse_fields(describe)).matches(fields)
    namespaced = s.parse_fields("involvedObject.namespace=default")
    assert not namespaced.matches(fields)


def test_events_v1_fields() -> None:
    event = {
        "metadata": {"name": "e", "namespace": "default"},
        "regarding": {"kind": "Pod", "name": "p", "namespace": "default"},
        "reportingController": "kbox/scheduler",
        "reason": "Scheduled",
        "type": "Normal",
    }
    fields = s.field_set("events.k8s.io", "Event", event)
    assert fields["regarding.kind"] == "Pod"
    assert fields["reportingController"] == "kbox/scheduler"
    assert fields["source"] == "kbox/scheduler"
    selector = s.check_fields(
        "events.k8s.io", "Event", s.parse_fields("regarding.name=p,reportingController=kbox/scheduler")
    )
    assert selector.matches(fields)
