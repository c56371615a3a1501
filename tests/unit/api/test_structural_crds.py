"""Realistic CRDs end to end through the engine: a certificate CRD in the style of cert-manager's and a
service-monitor CRD in the style of the Prometheus operator's (excerpts written for these tests, using
the constructs those projects' generated schemas use: int-or-string, enums, formats, required, list
maps, embedded selectors, preserve-unknown-fields, CEL rules and printer columns)."""

from __future__ import annotations

import copy
import datetime
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kbox.api.structural import Schema, printer_for_columns

CERTIFICATE_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: certificates.certs.example.io
spec:
  group: certs.example.io
  names: {kind: Certificate, plural: certificates, shortNames: [cert, certs]}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Ready, type: string, jsonPath: '.status.conditions[?(@.type=="Ready")].status'}
    - {name: Secret, type: string, jsonPath: .spec.secretName}
    - {name: Issuer, type: string, jsonPath: .spec.issuerRef.name, priority: 1}
    - {name: Status, type: string, jsonPath: '.status.conditions[?(@.type=="Ready")].message', priority: 1}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema:
        description: A request for a signed certificate.
        type: object
        required: [spec]
        properties:
          apiVersion: {type: string}
          kind: {type: string}
          metadata: {type: object}
          spec:
            type: object
            required: [issuerRef, secretName]
            x-kubernetes-validations:
            - rule: has(self.commonName) || has(self.dnsNames)
              message: at least one of commonName or dnsNames must be set
            properties:
              commonName: {type: string, maxLength: 64}
              dnsNames:
                type: array
                items: {type: string}
              ipAddresses:
                type: array
                items: {type: string, format: ipv4}
              duration: {type: string, format: duration}
              renewBefore: {type: string}
              isCA: {type: boolean, default: false}
              secretName: {type: string, minLength: 1}
              revisionHistoryLimit: {type: integer, format: int32, minimum: 1}
              usages:
                type: array
                items:
                  type: string
                  enum: [signing, digital signature, key encipherment, server auth, client auth]
              privateKey:
                type: object
                properties:
                  algorithm: {type: string, enum: [RSA, ECDSA, Ed25519], default: RSA}
                  size: {type: integer, default: 2048}
                  rotationPolicy: {type: string, enum: [Never, Always]}
              issuerRef:
                type: object
                required: [name]
                properties:
                  name: {type: string}
                  kind: {type: string, default: Issuer}
                  group: {type: string}
              secretTemplate:
                type: object
                properties:
                  annotations: {type: object, additionalProperties: {type: string}}
                  labels: {type: object, additionalProperties: {type: string}}
          status:
            type: object
            properties:
              notAfter: {type: string, format: date-time}
              revision: {type: integer}
              conditions:
                type: array
                x-kubernetes-list-type: map
                x-kubernetes-list-map-keys: [type]
                items:
                  type: object
                  required: [status, type]
                  properties:
                    type: {type: string}
                    status: {type: string, enum: ["True", "False", Unknown]}
                    reason: {type: string}
                    message: {type: string}
                    lastTransitionTime: {type: string, format: date-time}
"""

SERVICE_MONITOR_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: servicemonitors.monitoring.example.io
spec:
  group: monitoring.example.io
  names: {kind: ServiceMonitor, plural: servicemonitors, categories: [prometheus-operator]}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        required: [spec]
        properties:
          apiVersion: {type: string}
          kind: {type: string}
          metadata: {type: object}
          spec:
            type: object
            required: [selector]
            properties:
              jobLabel: {type: string}
              endpoints:
                type: array
                items:
                  type: object
                  properties:
                    port: {type: string}
                    targetPort:
                      anyOf: [{type: integer}, {type: string}]
                      x-kubernetes-int-or-string: true
                    path: {type: string}
                    scheme: {type: string, enum: [http, https]}
                    interval: {type: string, pattern: '^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$'}
                    honorLabels: {type: boolean, default: false}
                    relabelings:
                      type: array
                      items:
                        type: object
                        properties:
                          action:
                            type: string
                            default: replace
                            enum: [replace, Replace, keep, Keep, drop, Drop, labelmap, LabelMap]
                          sourceLabels:
                            type: array
                            items: {type: string, pattern: '^[a-zA-Z_][a-zA-Z0-9_]*$'}
                          regex: {type: string}
                          replacement: {type: string}
                    tlsConfig:
                      type: object
                      x-kubernetes-preserve-unknown-fields: true
              namespaceSelector:
                type: object
                properties:
                  any: {type: boolean}
                  matchNames: {type: array, items: {type: string}}
              selector:
                type: object
                x-kubernetes-map-type: atomic
                properties:
                  matchLabels: {type: object, additionalProperties: {type: string}}
                  matchExpressions:
                    type: array
                    items:
                      type: object
                      required: [key, operator]
                      properties:
                        key: {type: string}
                        operator: {type: string}
                        values:
                          type: array
                          x-kubernetes-list-type: atomic
                          items: {type: string}
              sampleLimit: {type: integer, format: int64}
"""


def _crd(text: str) -> dict[str, Any]:
    crd: dict[str, Any] = yaml.safe_load(text)
    return crd


def _version(text: str) -> dict[str, Any]:
    version: dict[str, Any] = _crd(text)["spec"]["versions"][0]
    return version


def _lines(schema: Schema, obj: dict[str, Any]) -> list[str]:
    return [f"{e.field}: {e.message()}" for e in schema.validate(obj)]


def test_certificate_schema_is_structural_and_its_cel_rule_is_enforced() -> None:
    schema = Schema.from_crd_version(_version(CERTIFICATE_CRD))
    assert schema.structural_errors() == []
    assert schema.schema_errors("spec.versions[0].schema.openAPIV3Schema") == []
    assert schema.warnings() == []
    cert = {"metadata": {"name": "c"}, "spec": {"secretName": "s", "issuerRef": {"name": "i"}}}
    assert _lines(schema, cert) == [
        'spec: Invalid value: "object": at least one of commonName or dnsNames must be set'
    ]


def test_a_valid_certificate_is_defaulted_and_pruned() -> None:
    schema = Schema.from_crd_version(_version(CERTIFICATE_CRD))
    cert: dict[str, Any] = {
        "apiVersion": "certs.example.io/v1",
        "kind": "Certificate",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "secretName": "web-tls",
            "dnsNames": ["web.example.com"],
            "duration": "2160h",
            "issuerRef": {"name": "letsencrypt"},
            "privateKey": {"algorithm": "ECDSA"},
            "usages": ["server auth"],
            "keystores": {"jks": {"create": True}},  # a field of a newer version: pruned
        },
    }
    assert schema.normalize(cert) == ["spec.keystores"]
    assert cert["spec"]["isCA"] is False
    assert cert["spec"]["privateKey"] == {"algorithm": "ECDSA", "size": 2048}
    assert cert["spec"]["issuerRef"] == {"name": "letsencrypt", "kind": "Issuer"}
    assert schema.validate(cert) == []


def test_an_invalid_certificate_gets_kube_apiserver_messages() -> None:
    schema = Schema.from_crd_version(_version(CERTIFICATE_CRD))
    cert: dict[str, Any] = {
        "apiVersion": "certs.example.io/v1",
        "kind": "Certificate",
        "metadata": {"name": "web"},
        "spec": {
            "secretName": "",
            "commonName": "x" * 65,
            "ipAddresses": ["10.0.0.1", "10.0.0.300"],
            "duration": "three months",
            "revisionHistoryLimit": 0,
            "usages": ["server auth", "code signing"],
            "privateKey": {"size": "big"},
        },
    }
    schema.normalize(cert)
    assert _lines(schema, cert) == [
        "spec.commonName: Too long: may not be more than 64 bytes",
        'spec.ipAddresses[1]: Invalid value: "10.0.0.300": spec.ipAddresses[1] in body must be of type ipv4: '
        '"10.0.0.300"',
        'spec.duration: Invalid value: "three months": spec.duration in body must be of type duration: '
        '"three months"',
        'spec.secretName: Invalid value: "": spec.secretName in body should be at least 1 chars long',
        "spec.revisionHistoryLimit: Invalid value: 0: spec.revisionHistoryLimit in body should be greater than "
        "or equal to 1",
        'spec.usages[1]: Unsupported value: "code signing": supported values: "signing", "digital signature", '
        '"key encipherment", "server auth", "client auth"',
        'spec.privateKey.size: Invalid value: "string": spec.privateKey.size in body must be of type integer: '
        '"string"',
        "spec.issuerRef: Required value",
        "<nil>: Invalid value: null: some validation rules were not checked because the object was invalid; "
        "correct the existing errors to complete validation",
    ]


def test_certificate_status_and_printer_columns() -> None:
    version = _version(CERTIFICATE_CRD)
    schema = Schema.from_crd_version(version)
    cert = {
        "apiVersion": "certs.example.io/v1",
        "kind": "Certificate",
        "metadata": {"name": "web", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"secretName": "web-tls", "issuerRef": {"name": "le"}},
        "status": {
            "notAfter": "2026-04-01T00:00:00Z",
            "conditions": [
                {"type": "Ready", "status": "True", "message": "Certificate is up to date"},
                {"type": "Ready", "status": "Maybe"},
            ],
        },
    }
    assert [f"{e.field}: {e.message()}" for e in schema.validate_status(cert)] == [
        'status.conditions[1].status: Unsupported value: "Maybe": supported values: "True", "False", "Unknown"',
        'status.conditions[1]: Duplicate value: map[string]interface {}{"type":"Ready"}',
        "<nil>: Invalid value: null: some validation rules were not checked because the object was invalid; "
        "correct the existing errors to complete validation",
    ]
    assert 'status.conditions[1]: Duplicate value: map[string]interface {}{"type":"Ready"}' in _lines(
        schema, cert
    )
    printer = printer_for_columns(version["additionalPrinterColumns"])
    now = datetime.datetime(2026, 1, 3, 0, 0, tzinfo=datetime.UTC)
    assert [c.name for c in printer.columns] == ["Name", "Ready", "Secret", "Issuer", "Status", "Age"]
    assert printer.row(cert, now) == ["web", "True", "web-tls", "le", "Certificate is up to date", "2d"]


def test_service_monitor() -> None:
    schema = Schema.from_crd_version(_version(SERVICE_MONITOR_CRD))
    assert schema.structural_errors() == []
    assert schema.warnings() == []
    monitor: dict[str, Any] = {
        "apiVersion": "monitoring.example.io/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "api", "namespace": "monitoring", "labels": {"release": "prom"}},
        "spec": {
            "selector": {"matchLabels": {"app": "api"}},
            "endpoints": [
                {
                    "port": "metrics",
                    "interval": "30s",
                    "targetPort": 8080,
                    "relabelings": [{"sourceLabels": ["__meta_kubernetes_pod_name"], "replacement": "x"}],
                    "tlsConfig": {"insecureSkipVerify": True, "ca": {"secret": {"name": "ca"}}},
                },
                {"port": "web", "targetPort": "http", "scheme": "https", "bearerTokenFile": "/x"},
            ],
        },
    }
    assert schema.normalize(monitor) == ["spec.endpoints[1].bearerTokenFile"]
    assert monitor["spec"]["endpoints"][0]["honorLabels"] is False
    assert monitor["spec"]["endpoints"][0]["relabelings"][0]["action"] == "replace"
    assert monitor["spec"]["endpoints"][0]["tlsConfig"]["ca"] == {"secret": {"name": "ca"}}
    assert schema.validate(monitor) == []

    monitor["spec"]["endpoints"][0].update(interval="30 seconds", targetPort=1.5, scheme="HTTP")
    monitor["spec"]["endpoints"][0]["relabelings"][0]["sourceLabels"] = ["0bad"]
    del monitor["spec"]["selector"]
    assert _lines(schema, monitor) == [
        'spec.endpoints[0].targetPort: Invalid value: "number": spec.endpoints[0].targetPort in body must be of '
        'type integer,string: "number"',
        '<nil>: Invalid value: "": "spec.endpoints[0].targetPort" must validate at least one schema (anyOf)',
        'spec.endpoints[0].targetPort: Invalid value: "number": spec.endpoints[0].targetPort in body must be of '
        'type integer: "number"',
        'spec.endpoints[0].scheme: Unsupported value: "HTTP": supported values: "http", "https"',
        'spec.endpoints[0].interval: Invalid value: "30 seconds": spec.endpoints[0].interval in body should match '
        "'^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$'",
        'spec.endpoints[0].relabelings[0].sourceLabels[0]: Invalid value: "0bad": '
        "spec.endpoints[0].relabelings[0].sourceLabels[0] in body should match '^[a-zA-Z_][a-zA-Z0-9_]*$'",
        "spec.selector: Required value",
    ]
    merge = schema.list_types()["properties"]["spec"]["properties"]
    assert merge["selector"]["x-kubernetes-map-type"] == "atomic"
    assert merge["endpoints"]["x-kubernetes-list-type"] == "atomic"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)
field_names = st.sampled_from(
    ["spec", "status", "metadata", "selector", "endpoints", "issuerRef", "conditions", "privateKey", "x"]
)
objects = st.dictionaries(field_names, json_values, max_size=5)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    obj=objects,
    nested=st.dictionaries(
        st.sampled_from(
            ["endpoints", "selector", "usages", "conditions", "secretName", "privateKey", "targetPort"]
        ),
        json_values,
        max_size=4,
    ),
)
def test_any_json_object_is_judged_without_crashing(obj: dict[str, Any], nested: dict[str, Any]) -> None:
    """Whatever a client sends, the engine answers with field errors, never an exception."""
    for text in (CERTIFICATE_CRD, SERVICE_MONITOR_CRD):
        if text not in _SCHEMAS:
            _SCHEMAS[text] = Schema.from_crd_version(_version(text))
        schema = _SCHEMAS[text]
        candidate = copy.deepcopy(obj)
        candidate.setdefault("spec", nested)
        old = copy.deepcopy(candidate)
        schema.normalize(candidate)
        for err in (
            schema.validate(candidate)
            + schema.validate_update(candidate, old)
            + schema.validate_status(candidate, old)
        ):
            assert err.field and err.message()


_SCHEMAS: dict[str, Schema] = {}
