"""``kbox describe`` against the real kubectl, on one started profile (fake runtime).

A pod with most of what the Pod layout shows (init and app containers, ports, command and args,
resources, probes, every kind of environment variable, mounts of several volume kinds, tolerations,
a node selector) must describe exactly as kubectl describes it, and so must the node, a kind kubectl
describes generically (Lease), a Deployment mid-rollout with its ReplicaSets and Service, a DaemonSet,
a StatefulSet, a Job, ConfigMaps, a Secret, a Namespace, several pods at once, name-prefix matches, a name
that does not exist and an empty namespace. Ages may differ by a few seconds where they print with the same width
(conftest.same_but_ages); everything else is compared exactly."""

from __future__ import annotations

import pytest

from tests.component.cli.conftest import KboxCluster, assert_same_as_kubectl, one_line_error
from tests.support.wait import eventually

RICH_POD = """
apiVersion: v1
kind: Pod
metadata:
  name: rich
  labels: {app: rich, tier: back}
  annotations: {note: "short", long: "%s"}
spec:
  nodeSelector: {kubernetes.io/os: linux}
  tolerations:
  - {key: dedicated, operator: Equal, value: db, effect: NoSchedule}
  - {operator: Exists}
  initContainers:
  - name: setup
    image: busybox
    command: [sh, -c, "echo ready"]
  containers:
  - name: app
    image: nginx:1.27
    command: [nginx]
    args: ["-g", "daemon off;"]
    ports:
    - {containerPort: 80, name: http}
    - {containerPort: 9090, protocol: UDP}
    resources:
      requests: {cpu: 100m, memory: 64Mi}
      limits: {cpu: 250m, memory: 128Mi}
    livenessProbe:
      httpGet: {path: /healthz, port: 80}
      periodSeconds: 5
    readinessProbe:
      exec: {command: [cat, /tmp/ready]}
    startupProbe:
      tcpSocket: {port: 80}
      failureThreshold: 30
    env:
    - {name: PLAIN, value: hello}
    - {name: MULTI, value: "one\\ntwo"}
    - name: POD_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    - name: APP_LABEL
      valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}
    - name: MEM_LIMIT
      valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}
    - name: CPU_REQUEST
      valueFrom: {resourceFieldRef: {resource: requests.cpu, divisor: 1m}}
    - name: SECRET_VALUE
      valueFrom: {secretKeyRef: {name: creds, key: password}}
    - name: CONFIG_VALUE
      valueFrom: {configMapKeyRef: {name: settings, key: mode, optional: true}}
    envFrom:
    - configMapRef: {name: settings}
      prefix: CFG_
    volumeMounts:
    - {name: scratch, mountPath: /scratch}
    - {name: config, mountPath: /etc/config, readOnly: true}
    - {name: creds, mountPath: /etc/creds, subPath: password}
  - name: sidecar
    image: busybox
  volumes:
  - name: scratch
    emptyDir: {sizeLimit: 1Gi}
  - name: config
    configMap: {name: settings}
  - name: creds
    secret: {secretName: creds, optional: false}
  - name: info
    downwardAPI:
      items:
      - {path: labels, fieldRef: {fieldPath: metadata.labels}}
  - name: host
    hostPath: {path: /var/log, type: Directory}
  - name: bundle
    projected:
      sources:
      - configMap: {name: settings}
      - serviceAccountToken: {path: token, expirationSeconds: 3600}
""" % ("x" * 150)


@pytest.fixture(scope="module")
def namespace(cluster: KboxCluster) -> str:
    ns = cluster.namespace("describe")
    cluster.kubectl_ok("create", "configmap", "settings", "--from-literal=mode=fast", "-n", ns)
    cluster.kubectl_ok("create", "secret", "generic", "creds", "--from-literal=password=pw", "-n", ns)
    cluster.kubectl_ok("apply", "-n", ns, "-f", "-", input=RICH_POD)
    cluster.kubectl_ok("run", "plain", "--image=nginx", "-n", ns)
    return ns


async def _running(cluster: KboxCluster, ns: str) -> None:
    """``plain`` runs; ``rich`` has started its init container (the fake runtime never finishes it)."""

    def check() -> bool:
        plain = cluster.kubectl_ok("get", "pod", "plain", "-n", ns, "-o", "jsonpath={.status.phase}")
        rich = cluster.kubectl_ok(
            "get", "pod", "rich", "-n", ns, "-o", "jsonpath={.status.initContainerStatuses[0].state.running}"
        )
        return plain == "Running" and bool(rich)

    await eventually(check, timeout=30, interval=0.2)


async def test_pod_matches_kubectl(cluster: KboxCluster, namespace: str) -> None:
    await _running(cluster, namespace)
    out = (await assert_same_as_kubectl(cluster, "describe", "pod", "rich", "-n", namespace)).stdout
    for expected in (
        "Init Containers:",
        "Liveness:",
        "CFG_",
        "POD_NAME:",
        "Events:",
    ):
        assert expected in out
    assert [line.split() for line in out.splitlines() if line.startswith("QoS")] == [
        ["QoS", "Class:", "Burstable"]
    ]
    await assert_same_as_kubectl(cluster, "describe", "pods", "-n", namespace)
    await assert_same_as_kubectl(cluster, "describe", "pod", "pla", "-n", namespace)  # a name prefix
    await assert_same_as_kubectl(cluster, "describe", "pods", "-l", "app=rich", "-n", namespace)


async def test_node_and_a_generic_kind_match_kubectl(cluster: KboxCluster, namespace: str) -> None:
    await _running(cluster, namespace)
    node = cluster.kubectl_ok("get", "nodes", "-o", "jsonpath={.items[0].metadata.name}")
    out = (await assert_same_as_kubectl(cluster, "describe", "node", node)).stdout
    assert "Non-terminated Pods:" in out and "Allocated resources:" in out
    lease = (await assert_same_as_kubectl(cluster, "describe", "lease", node, "-n", "kube-node-lease")).stdout
    assert "Holder Identity:" in lease and "Renew Time:" in lease


async def test_deployment_and_service_match_kubectl(cluster: KboxCluster) -> None:
    ns = cluster.namespace("workloads")
    cluster.kubectl_ok(
        "create", "deployment", "web", "--image=nginx", "--replicas=2", "--port=8080", "-n", ns
    )
    cluster.kubectl_ok("expose", "deployment", "web", "--port=80", "--target-port=8080", "-n", ns)
    cluster.kubectl_ok("create", "service", "nodeport", "np", "--tcp=81:8081", "-n", ns)

    def available() -> bool:
        ready = cluster.kubectl_ok(
            "get", "deploy", "web", "-n", ns, "-o", "jsonpath={.status.availableReplicas}"
        )
        slices = cluster.kubectl_ok(
            "get",
            "endpointslices",
            "-n",
            ns,
            "-l",
            "kubernetes.io/service-name=web",
            "-o",
            "jsonpath={.items[*].endpoints[*].addresses[0]}",
        )
        return ready == "2" and len(slices.split()) == 2

    await eventually(available, timeout=30, interval=0.2)
    # A new image: the Deployment then has an old and a new ReplicaSet.
    cluster.kubectl_ok("set", "image", "deployment/web", "nginx=nginx:2", "-n", ns)
    await eventually(available, timeout=30, interval=0.2)
    deployment = (await assert_same_as_kubectl(cluster, "describe", "deployment", "web", "-n", ns)).stdout
    assert "OldReplicaSets:" in deployment and "Pod Template:" in deployment
    service = (await assert_same_as_kubectl(cluster, "describe", "service", "web", "-n", ns)).stdout
    assert [line.split()[0] for line in service.splitlines() if line.startswith("Endpoints:")] == [
        "Endpoints:"
    ]
    await assert_same_as_kubectl(cluster, "describe", "services", "-n", ns)
    replica_sets = (await assert_same_as_kubectl(cluster, "describe", "replicasets", "-n", ns)).stdout
    assert replica_sets.count("Pods Status:") == 2


DAEMON_AND_STATEFUL_SETS = """
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, labels: {app: agent}}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      nodeSelector: {kubernetes.io/os: linux}
      containers: [{name: agent, image: busybox}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: postgres, volumeMounts: [{name: data, mountPath: /data}]}]
  volumeClaimTemplates:
  - metadata: {name: data, labels: {tier: db}}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
---
apiVersion: batch/v1
kind: Job
metadata: {name: indexed}
spec:
  completions: 3
  parallelism: 2
  completionMode: Indexed
  backoffLimit: 2
  activeDeadlineSeconds: 600
  template:
    spec:
      restartPolicy: Never
      containers: [{name: w, image: busybox, command: [sh, -c, "exit 0"]}]
"""


async def test_daemon_set_stateful_set_and_job_match_kubectl(cluster: KboxCluster) -> None:
    ns = cluster.namespace("sets")
    cluster.kubectl_ok("apply", "-n", ns, "-f", "-", input=DAEMON_AND_STATEFUL_SETS)
    daemon_set = (await assert_same_as_kubectl(cluster, "describe", "daemonset", "agent", "-n", ns)).stdout
    assert "Desired Number of Nodes Scheduled:" in daemon_set
    stateful_set = (await assert_same_as_kubectl(cluster, "describe", "statefulset", "db", "-n", ns)).stdout
    assert "Volume Claims:" in stateful_set and "Access Modes:  [ReadWriteOnce]" in stateful_set
    job = (await assert_same_as_kubectl(cluster, "describe", "job", "indexed", "-n", ns)).stdout
    assert "Completion Mode:" in job and "Pods Statuses:" in job


async def test_config_secret_and_namespace_match_kubectl(cluster: KboxCluster, namespace: str) -> None:
    cluster.kubectl_ok(
        "create", "configmap", "script", "--from-literal=run.sh=echo one\necho two\n", "-n", namespace
    )
    await assert_same_as_kubectl(cluster, "describe", "configmap", "script", "-n", namespace)
    await assert_same_as_kubectl(cluster, "describe", "configmap", "settings", "-n", namespace)
    secret = (await assert_same_as_kubectl(cluster, "describe", "secret", "creds", "-n", namespace)).stdout
    assert "password:  2 bytes" in secret and "pw" not in secret.replace("password", "")
    await assert_same_as_kubectl(cluster, "describe", "namespace", namespace)


async def test_missing_and_empty_match_kubectl(cluster: KboxCluster, namespace: str) -> None:
    missing = await assert_same_as_kubectl(cluster, "describe", "pod", "nope", "-n", namespace)
    assert missing.returncode == 1 and 'pods "nope" not found' in missing.stderr
    empty = cluster.namespace("empty")
    result = await assert_same_as_kubectl(cluster, "describe", "pods", "-n", empty)
    assert result.stderr == f"No resources found in {empty} namespace.\n"


def test_describe_bad_input_and_help(cluster: KboxCluster) -> None:
    assert 'the server doesn\'t have a resource type "nope"' in one_line_error(
        cluster.kbox("describe", "nope")
    )
    assert "specify the type" in one_line_error(cluster.kbox("describe"))
    help_text = cluster.ok("describe", "--help")
    assert "Examples:" in help_text and "kbox describe pod web" in help_text
