"""``kbox create job`` and ``kbox create cronjob`` through the installed command, against kubectl.

Covers: the objects both generators build (``--dry-run=client -o yaml`` byte for byte as kubectl's), a
job that runs its command to completion on the fake runtime, a cron job created on the server, a job
made from it with ``--from=cronjob/NAME`` (its template, labels, the ``instantiate: manual``
annotation, owned by the cron job; its dry-run YAML byte for byte as kubectl's), and the refusals (neither --image nor --from, a command with --from,
--from naming something other than a cron job).
"""

from __future__ import annotations

import json

from tests.component.cli.conftest import KboxCluster, assert_same_as_kubectl, one_line_error


async def test_generated_objects_match_kubectl(cluster: KboxCluster) -> None:
    cron = "--schedule=*/5 * * * *"
    for args in (
        ("job", "once", "--image=busybox", "--dry-run=client", "-o", "yaml", "--", "sh", "-c", "echo hi"),
        ("job", "plain", "--image=busybox", "--dry-run=client", "-o", "yaml"),
        ("cronjob", "tick", "--image=busybox", cron, "--dry-run=client", "-o", "yaml", "--", "date"),
        ("cronjob", "tock", "--image=busybox", "--schedule=@daily", "--restart=Never", "--dry-run=client"),
    ):
        await assert_same_as_kubectl(cluster, "create", *args)


async def test_jobs_and_cron_jobs_on_the_server(cluster: KboxCluster) -> None:
    ns = cluster.namespace("create")
    out = cluster.ok("create", "job", "once", "--image=busybox", "-n", ns, "--", "echo", "hi")
    assert out.strip() == "job.batch/once created"
    job = json.loads(cluster.kubectl_ok("get", "job", "once", "-n", ns, "-o", "json"))
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert (container["name"], container["command"]) == ("once", ["echo", "hi"])
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    cluster.kubectl_ok("wait", "job/once", "--for=condition=Complete", "-n", ns, "--timeout=30s")

    out = cluster.ok("create", "cronjob", "nightly", "--image=busybox", "--schedule=0 3 * * *", "-n", ns)
    assert out.strip() == "cronjob.batch/nightly created"
    cluster.kubectl_ok("label", "cronjob", "nightly", "team=ops", "-n", ns)
    cron = json.loads(cluster.kubectl_ok("get", "cronjob", "nightly", "-n", ns, "-o", "json"))
    patch = {"spec": {"jobTemplate": {"metadata": {"labels": {"tier": "batch"}, "annotations": {"a": "b"}}}}}
    cluster.kubectl_ok("patch", "cronjob", "nightly", "-n", ns, "--type=merge", "-p", json.dumps(patch))

    preview = ("create", "job", "by-hand", "--from=cronjob/nightly", "--dry-run=client", "-o", "yaml")
    await assert_same_as_kubectl(cluster, *preview, "-n", ns)
    out = cluster.ok("create", "job", "by-hand", "--from=cronjob/nightly", "-n", ns)
    assert out.strip() == "job.batch/by-hand created"
    job = json.loads(cluster.kubectl_ok("get", "job", "by-hand", "-n", ns, "-o", "json"))
    meta = job["metadata"]
    assert meta["annotations"] == {"cronjob.kubernetes.io/instantiate": "manual", "a": "b"}
    assert meta["labels"]["tier"] == "batch"
    assert [(o["kind"], o["name"], o["uid"], o["controller"]) for o in meta["ownerReferences"]] == [
        ("CronJob", "nightly", cron["metadata"]["uid"], True)
    ]
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox"
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"

    for args, message in (
        (("create", "job", "x"), "error: either --image or --from must be specified"),
        (
            ("create", "job", "x", "--from=cronjob/nightly", "--", "date"),
            "error: cannot specify --from and command",
        ),
        (
            ("create", "job", "x", "--from=configmap/kube-root-ca.crt"),
            "error: from must be an existing cronjob, not configmaps",
        ),
    ):
        assert one_line_error(cluster.kbox(*args, "-n", ns)) == message
