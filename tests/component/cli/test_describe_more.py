"""``kbox describe`` for the kinds added after the first describers, byte for byte against kubectl 1.32.

Covers: PersistentVolumes (hostPath source, node affinity, access modes, finalizers, bound claim) and
PersistentVolumeClaims (bound statically and through the default StorageClass with its events, "Used
By" pods, one still Pending), StorageClasses (parameters, mount options, allowed topologies, the
default marker), PodDisruptionBudgets (minAvailable and a maxUnavailable percentage with an expression
selector, and the status its controller counts), CronJobs (a suspended one with limits and a job
template), and ControllerRevisions (kubectl's generic layout).
"""

from __future__ import annotations

import json

from tests.component.cli.conftest import KboxCluster, assert_same_as_kubectl


def objects(ns: str) -> str:
    items = [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": "disk-1", "labels": {"tier": "disk"}},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadOnlyMany", "ReadWriteOnce"],
                "hostPath": {"path": "/tmp/disk-1", "type": "DirectoryOrCreate"},
                "storageClassName": "manual",
                "nodeAffinity": {
                    "required": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}
                                ]
                            }
                        ]
                    }
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "static", "namespace": ns},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "manual",
                "resources": {"requests": {"storage": "500Mi"}},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "dynamic", "namespace": ns},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "100Mi"}}},
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "waiting", "namespace": ns},
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "storageClassName": "nowhere",
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "user", "namespace": ns},
            "spec": {
                "containers": [{"name": "c", "image": "busybox"}],
                "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "static"}}],
            },
        },
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": "fancy", "annotations": {"team": "storage"}},
            "provisioner": "example.com/disks",
            "parameters": {"type": "ssd", "iops": "300"},
            "mountOptions": ["ro", "noatime"],
            "reclaimPolicy": "Retain",
            "allowedTopologies": [{"matchLabelExpressions": [{"key": "zone", "values": ["a", "b"]}]}],
        },
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "min", "namespace": ns},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}},
        },
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "pct", "namespace": ns},
            "spec": {
                "maxUnavailable": "50%",
                "selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "db"]}]},
            },
        },
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "nightly", "namespace": ns, "labels": {"team": "ops"}},
            "spec": {
                "schedule": "0 3 * * *",
                "suspend": True,
                "startingDeadlineSeconds": 30,
                "successfulJobsHistoryLimit": 1,
                "jobTemplate": {
                    "spec": {
                        "parallelism": 2,
                        "activeDeadlineSeconds": 60,
                        "template": {
                            "spec": {
                                "restartPolicy": "OnFailure",
                                "containers": [{"name": "job", "image": "busybox", "command": ["date"]}],
                            }
                        },
                    }
                },
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "agent", "namespace": ns},
            "spec": {
                "selector": {"matchLabels": {"app": "agent"}},
                "template": {
                    "metadata": {"labels": {"app": "agent"}},
                    "spec": {"containers": [{"name": "a", "image": "busybox"}]},
                },
            },
        },
    ]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


async def test_describe_storage_budgets_cron_jobs_and_revisions(cluster: KboxCluster) -> None:
    ns = cluster.namespace("describe")
    cluster.ok("apply", "-f", "-", input=objects(ns))
    cluster.kubectl_ok("create", "deployment", "web", "--image=busybox", "--replicas=2", "-n", ns)
    for claim in ("static", "dynamic"):
        cluster.kubectl_ok(
            "wait", f"pvc/{claim}", "--for=jsonpath={.status.phase}=Bound", "-n", ns, "--timeout=30s"
        )
    cluster.kubectl_ok(
        "wait", "pdb/min", "--for=jsonpath={.status.currentHealthy}=2", "-n", ns, "--timeout=30s"
    )
    await assert_same_as_kubectl(cluster, "describe", "pv/disk-1", "storageclass/fancy", "sc/standard")
    await assert_same_as_kubectl(cluster, "describe", "pvc,pdb,cronjobs,controllerrevisions", "-n", ns)
