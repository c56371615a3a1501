"""The Job controller against the apiserver, fake-runtime kubelets and a test binder (containers exit with
the code and after the delay their pod's annotations ask for): completions with parallelism and the
interim then final conditions, pods counted through the tracking finalizer (a deleted pod is a failure,
and with a podFailurePolicy only once the kubelet let it go), backoffLimit (container restarts with
restartPolicy OnFailure), Indexed Jobs, activeDeadlineSeconds, suspend and resume, podFailurePolicy
(FailJob, Ignore), an Indexed Job's successPolicy, adoption and release with a manual selector, pods
freed when their Job is deleted; the back-off arithmetic; JobStrategy's defaults and validation through
the API. Then, in a full embedded cluster with the real kubectl: ``kubectl wait
--for=condition=complete|failed``, ``kubectl get jobs`` and ``kubectl describe job``, a one-line refusal
of an invalid Job, the fixture's short Job back-off, a deleted running Job's pods going, and the TTL-after-finished
controller deleting a Job and (through the garbage collector) its pods. Not covered: backoffLimitPerIndex and maxFailedIndexes (refused by validation)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from kbox.api.errors import StatusError
from kbox.client import interface
from kbox.controllers import jobpods
from kbox.controllers.job import JOBS, JobController
from kbox.testing.cluster import Cluster as EmbeddedCluster
from kbox.testing.cluster import SyncCluster
from kbox.util import aiotasks
from tests.component.controllers import Cluster, cluster, eventually
from tests.support.apiserver import KUBECTL
from tests.support.wait import until

Obj = dict[str, Any]


@pytest.fixture
async def c(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with cluster(tmp_path) as running:
        running.start(JobController(running.factory, running.client, backoff_base=0.2, backoff_max=1.0))
        yield running


def job_body(name: str, *, exit_after: str = "0.1", exit_code: int = 0, **spec: Any) -> Obj:
    annotations = {jobpods_annotation("exit-after"): exit_after}
    if exit_code:
        annotations[jobpods_annotation("exit-code")] = str(exit_code)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "metadata": {"annotations": annotations},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox:1"}]},
            },
            **spec,
        },
    }


def jobpods_annotation(what: str) -> str:
    return f"fake.kbox.io/{what}"


async def create(c: Cluster, body: Obj) -> Obj:
    return await c.client.create(JOBS, body, namespace="default")


async def get_job(c: Cluster, name: str) -> Obj:
    return await c.client.get(JOBS, name, namespace="default")


def condition(job: Obj, kind: str) -> Obj | None:
    return next((x for x in (job.get("status") or {}).get("conditions") or [] if x["type"] == kind), None)


async def finished(c: Cluster, name: str, kind: str) -> Obj:
    """Wait for the Job's ``kind`` condition (Complete, Failed) to be True; return the Job."""

    async def check() -> Obj | None:
        job = await get_job(c, name)
        found = condition(job, kind)
        return job if found is not None and found["status"] == "True" else None

    result: Obj = await eventually(check, timeout=20, message=f"{name} {kind}")
    return result


async def job_pods(c: Cluster, name: str) -> list[Obj]:
    found = await c.client.list(
        interface.PODS, namespace="default", label_selector=f"batch.kubernetes.io/job-name={name}"
    )
    items: list[Obj] = found["items"]
    return items


async def reasons(c: Cluster, name: str) -> list[str]:
    found = await c.client.list(
        interface.EVENTS, namespace="default", field_selector=f"involvedObject.name={name}"
    )
    return [e["reason"] for e in found["items"]]


# -- the controller ------------------------------------------------------------------------------


async def test_runs_pods_to_completion_never_more_than_parallelism(c: Cluster) -> None:
    seen_active: list[int] = []

    async def watch() -> None:
        async for event in c.client.watch(JOBS, namespace="default"):
            seen_active.append((event.object.get("status") or {}).get("active", 0))

    watcher = aiotasks.create_guarded_task(watch(), name="test/job-watch")
    try:
        created = await create(c, job_body("work", completions=4, parallelism=2))
        job = await finished(c, "work", "Complete")
    finally:
        await aiotasks.stop([watcher], title="test")
    status = job["status"]
    assert status["succeeded"] == 4 and "failed" not in status and "active" not in status
    assert status["ready"] == 0 and status["terminating"] == 0 and status["uncountedTerminatedPods"] == {}
    met = condition(job, "SuccessCriteriaMet")
    assert met is not None and met["status"] == "True" and met["reason"] == "CompletionsReached"
    complete = condition(job, "Complete")
    assert complete is not None and complete["message"] == "Reached expected number of succeeded pods"
    assert status["startTime"] <= status["completionTime"]
    assert max(seen_active) == 2

    pods = await job_pods(c, "work")
    uid = created["metadata"]["uid"]
    assert len(pods) == 4
    for pod in pods:
        metadata = pod["metadata"]
        assert metadata["name"].startswith("work-") and pod["status"]["phase"] == "Succeeded"
        assert metadata["labels"]["batch.kubernetes.io/controller-uid"] == uid
        assert metadata["labels"]["controller-uid"] == uid and metadata["labels"]["job-name"] == "work"
        assert (
            metadata["ownerReferences"][0]["kind"] == "Job" and metadata["ownerReferences"][0]["uid"] == uid
        )
        assert jobpods.TRACKING_FINALIZER not in (metadata.get("finalizers") or [])
    found = await eventually(lambda: _has(reasons(c, "work"), "Completed"))
    assert found.count("SuccessfulCreate") == 4


async def _has(pending: Any, reason: str) -> list[str] | None:
    found: list[str] = await pending
    return found if reason in found else None


async def test_backoff_limit_exceeded(c: Cluster) -> None:
    await create(c, job_body("fails", exit_code=1, backoffLimit=1))
    job = await finished(c, "fails", "Failed")
    failed = condition(job, "Failed")
    assert failed is not None and failed["reason"] == "BackoffLimitExceeded"
    assert failed["message"] == "Job has reached the specified backoff limit"
    target = condition(job, "FailureTarget")
    assert target is not None and target["reason"] == "BackoffLimitExceeded"
    assert (
        job["status"]["failed"] == 2
        and "succeeded" not in job["status"]
        and "completionTime" not in job["status"]
    )
    assert len(await job_pods(c, "fails")) == 2
    await eventually(lambda: _has(reasons(c, "fails"), "BackoffLimitExceeded"))


async def test_indexed_job_runs_each_index_once(c: Cluster) -> None:
    await create(c, job_body("idx", completions=3, parallelism=3, completionMode="Indexed"))
    job = await finished(c, "idx", "Complete")
    assert job["status"]["completedIndexes"] == "0-2" and job["status"]["succeeded"] == 3
    pods = sorted(
        await job_pods(c, "idx"), key=lambda p: int(p["metadata"]["annotations"][jobpods.COMPLETION_INDEX])
    )
    assert [p["metadata"]["labels"][jobpods.COMPLETION_INDEX] for p in pods] == ["0", "1", "2"]
    for index, pod in enumerate(pods):
        assert pod["metadata"]["name"].startswith(f"idx-{index}-")
        assert pod["spec"]["hostname"] == f"idx-{index}"
        env = pod["spec"]["containers"][0]["env"]
        assert {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {"apiVersion": "v1",
                "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}} in env  # fmt: skip


async def test_active_deadline_fails_the_job_and_stops_its_pods(c: Cluster) -> None:
    await create(c, job_body("slow", exit_after="60", activeDeadlineSeconds=1, parallelism=2, completions=2))
    job = await finished(c, "slow", "Failed")
    failed = condition(job, "Failed")
    assert failed is not None and failed["reason"] == "DeadlineExceeded"
    assert failed["message"] == "Job was active longer than specified deadline"
    assert job["status"]["failed"] == 2 and "active" not in job["status"]
    assert all(p["metadata"].get("deletionTimestamp") for p in await job_pods(c, "slow"))


async def test_suspend_resume_and_suspend_again(c: Cluster) -> None:
    await create(c, job_body("later", exit_after="60", suspend=True, completions=2, parallelism=2))

    async def suspended() -> Obj | None:
        job = await get_job(c, "later")
        found = condition(job, "Suspended")
        return job if found is not None and found["status"] == "True" else None

    job = await eventually(suspended)
    assert condition(job, "Suspended")["reason"] == "JobSuspended"  # type: ignore[index]
    assert "startTime" not in job["status"] and await job_pods(c, "later") == []

    await c.client.patch(JOBS, "later", {"spec": {"suspend": False}}, namespace="default")

    async def running() -> Obj | None:
        job = await get_job(c, "later")
        pods = [p for p in await job_pods(c, "later") if p["status"].get("phase") == "Running"]
        return job if len(pods) == 2 and job["status"].get("active") == 2 else None

    job = await eventually(running)
    resumed = condition(job, "Suspended")
    assert resumed is not None and resumed["status"] == "False" and resumed["reason"] == "JobResumed"
    assert job["status"]["startTime"]

    await c.client.patch(JOBS, "later", {"spec": {"suspend": True}}, namespace="default")

    async def stopped() -> Obj | None:
        job = await get_job(c, "later")
        found = condition(job, "Suspended")
        if found is None or found["status"] != "True" or await job_pods(c, "later"):
            return None
        return job

    job = await eventually(stopped)
    # Pods a suspension deletes count as neither failed nor succeeded.
    assert "failed" not in job["status"] and "active" not in job["status"]
    assert set(await reasons(c, "later")) >= {"Suspended", "Resumed", "SuccessfulDelete"}


async def test_a_deleted_pod_counts_as_failed_and_is_replaced(c: Cluster) -> None:
    await create(c, job_body("held", exit_after="60", backoffLimit=3))

    async def one_running() -> Obj | None:
        pods = [p for p in await job_pods(c, "held") if p["status"].get("phase") == "Running"]
        return pods[0] if len(pods) == 1 else None

    first = await eventually(one_running)
    assert jobpods.TRACKING_FINALIZER in first["metadata"]["finalizers"]
    await c.client.delete(interface.PODS, first["metadata"]["name"], namespace="default")

    async def replaced() -> Obj | None:
        job = await get_job(c, "held")
        names = {p["metadata"]["name"] for p in await job_pods(c, "held")}
        if job["status"].get("failed") == 1 and first["metadata"]["name"] not in names and len(names) == 1:
            return job
        return None

    job = await eventually(replaced)
    assert job["status"]["uncountedTerminatedPods"] == {} and condition(job, "Failed") is None


async def test_pod_failure_policy_fail_job(c: Cluster) -> None:
    policy = {
        "rules": [
            {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}}
        ]
    }
    await create(c, job_body("policy", exit_code=42, podFailurePolicy=policy))
    job = await finished(c, "policy", "Failed")
    failed = condition(job, "Failed")
    (pod,) = await job_pods(c, "policy")
    assert failed is not None and failed["reason"] == "PodFailurePolicy"
    assert failed["message"] == (
        f"Container main for pod default/{pod['metadata']['name']} failed with exit code 42 "
        "matching FailJob rule at index 0"
    )
    assert job["status"]["failed"] == 1


async def test_pod_failure_policy_ignore_and_pods_freed_when_the_job_goes(c: Cluster) -> None:
    policy = {"rules": [{"action": "Ignore", "onExitCodes": {"operator": "In", "values": [3]}}]}
    await create(c, job_body("flaky", exit_code=3, backoffLimit=0, podFailurePolicy=policy))

    async def two_ignored() -> list[Obj] | None:
        pods = await job_pods(c, "flaky")
        failed = [p for p in pods if p["status"].get("phase") == "Failed"]
        return pods if len(failed) >= 2 else None

    await eventually(two_ignored)
    job = await get_job(c, "flaky")
    assert condition(job, "Failed") is None and "failed" not in job["status"]

    # The harness has no garbage collector: deleting the Job leaves its pods, freed of the finalizer.
    await c.client.delete(JOBS, "flaky", namespace="default")

    async def freed() -> bool:
        pods = await job_pods(c, "flaky")
        return bool(pods) and all(
            jobpods.TRACKING_FINALIZER not in (p["metadata"].get("finalizers") or []) for p in pods
        )

    await eventually(freed)


def test_back_off_doubles_from_the_base_up_to_the_cap() -> None:
    record = jobpods.BackoffRecord()
    failed = [{"metadata": {}, "status": {"phase": "Failed"}}]
    delays = []
    for _ in range(8):
        record = record.after([], failed, 1000.0)
        delays.append(record.remaining(1000.0, base=10.0, cap=360.0))
    assert delays == [10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 360.0, 360.0]
    assert record.remaining(1100.0, base=10.0, cap=360.0) == 260.0
    # A success resets the count.
    assert record.after(failed, [], 1200.0).remaining(1200.0, base=10.0, cap=360.0) == 0.0


def test_indexes_round_trip() -> None:
    assert jobpods.format_indexes({0, 1, 2, 5, 7, 8}) == "0-2,5,7-8"
    assert jobpods.parse_indexes("0-2,5,7-8", 8) == {0, 1, 2, 5, 7}
    assert jobpods.format_indexes(set()) == ""


# -- the API: defaults and validation --------------------------------------------------------------


async def invalid(c: Cluster, body: Obj) -> str:
    with pytest.raises(StatusError) as caught:
        await create(c, body)
    assert caught.value.code == 422
    return caught.value.message


async def test_defaults_and_generated_selector(c: Cluster) -> None:
    job = await create(c, job_body("plain", suspend=True))
    spec, uid = job["spec"], job["metadata"]["uid"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (1, 1, 6)
    assert spec["completionMode"] == "NonIndexed" and spec["podReplacementPolicy"] == "TerminatingOrFailed"
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert (
        job["metadata"]["labels"]
        == spec["template"]["metadata"]["labels"]
        == {
            "batch.kubernetes.io/controller-uid": uid,
            "batch.kubernetes.io/job-name": "plain",
            "controller-uid": uid,
            "job-name": "plain",
        }
    )
    queue = await create(c, job_body("queue", parallelism=3, suspend=True))
    assert "completions" not in queue["spec"] and queue["spec"]["parallelism"] == 3
    policy = {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}
    with_policy = await create(c, job_body("pfp", podFailurePolicy=policy, suspend=True))
    assert with_policy["spec"]["podReplacementPolicy"] == "Failed"
    assert with_policy["spec"]["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["status"] == "True"


async def test_invalid_jobs_are_refused(c: Cluster) -> None:
    body = job_body("bad")
    del body["spec"]["template"]["spec"]["restartPolicy"]
    assert (
        'spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"'
        in await invalid(c, body)
    )
    body = job_body("bad", selector={"matchLabels": {"app": "x"}})
    assert "`selector` not auto-generated" in await invalid(c, body)
    body = job_body("bad", completionMode="Indexed", parallelism=2)
    assert "spec.completions: Required value: when completion mode is Indexed" in await invalid(c, body)
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [0]}}]}
    assert "must not be 0 for the In operator" in await invalid(c, job_body("bad", podFailurePolicy=policy))
    body = job_body("bad", podFailurePolicy={"rules": []})
    body["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    assert 'only "Never" is supported when podFailurePolicy is specified' in await invalid(c, body)
    assert "spec.backoffLimit: Invalid value: -1" in await invalid(c, job_body("bad", backoffLimit=-1))


async def test_what_may_change_after_creation(c: Cluster) -> None:
    await create(c, job_body("fixed", exit_after="60"))
    with pytest.raises(StatusError) as caught:
        await c.client.patch(
            JOBS, "fixed", {"spec": {"template": {"spec": {"nodeSelector": {"a": "b"}}}}}, namespace="default"
        )
    assert (
        "spec.template: Invalid value" in caught.value.message
        and "field is immutable" in caught.value.message
    )
    with pytest.raises(StatusError) as caught:
        await c.client.patch(JOBS, "fixed", {"spec": {"completions": 2}}, namespace="default")
    assert "spec.completions" in caught.value.message
    await c.client.patch(JOBS, "fixed", {"spec": {"parallelism": 0, "backoffLimit": 2}}, namespace="default")

    # A suspended Job that never started may still change its scheduling directives.
    await create(c, job_body("waiting", suspend=True))
    await eventually(lambda: _suspended_written(c, "waiting"))
    patch = {
        "spec": {"template": {"metadata": {"labels": {"extra": "1"}}, "spec": {"nodeSelector": {"a": "b"}}}}
    }
    changed = await c.client.patch(JOBS, "waiting", patch, namespace="default")
    assert changed["spec"]["template"]["spec"]["nodeSelector"] == {"a": "b"}

    # Elastic Indexed Jobs: completions changes together with parallelism.
    await create(
        c, job_body("elastic", completionMode="Indexed", completions=2, parallelism=2, exit_after="60")
    )
    scaled = await c.client.patch(
        JOBS, "elastic", {"spec": {"completions": 3, "parallelism": 3}}, namespace="default"
    )
    assert scaled["spec"]["completions"] == 3
    with pytest.raises(StatusError) as caught:
        await c.client.patch(JOBS, "elastic", {"spec": {"completions": 4}}, namespace="default")
    assert "can only be modified in tandem with spec.parallelism" in caught.value.message


async def _suspended_written(c: Cluster, name: str) -> bool:
    return condition(await get_job(c, name), "Suspended") is not None


# -- the embedded cluster and the real kubectl ---------------------------------------------------


@pytest.fixture(scope="module")
def kc() -> Iterator[SyncCluster]:
    with EmbeddedCluster(runtime="fake") as running:
        yield running


def kubectl(kc: SyncCluster, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    cache = Path(kc.state_dir) / "kubectl-cache"
    return subprocess.run(
        [KUBECTL, f"--kubeconfig={kc.kubeconfig_path}", f"--cache-dir={cache}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_kubectl_wait_get_and_describe(kc: SyncCluster) -> None:
    assert kubectl(kc, "create", "job", "hello", "--image=busybox").returncode == 0
    waited = kubectl(kc, "wait", "--for=condition=complete", "job/hello", "--timeout=30s")
    assert waited.returncode == 0 and waited.stdout == "job.batch/hello condition met\n", waited.stderr
    listed = kubectl(kc, "get", "jobs", "hello")
    header, row = listed.stdout.splitlines()
    assert header.split() == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    name, status, completions, duration, _age = row.split()
    assert (name, status, completions) == ("hello", "Complete", "1/1") and duration.endswith("s")
    described = kubectl(kc, "describe", "job", "hello").stdout
    assert "Pods Statuses:    0 Active (0 Ready) / 1 Succeeded / 0 Failed" in described
    assert "job-controller  Created pod: hello-" in described and "Job completed" in described

    failing = json.loads(
        kubectl(kc, "create", "job", "broken", "--image=busybox", "--dry-run=client", "-o", "json").stdout
    )
    failing["spec"]["backoffLimit"] = 2
    failing["spec"]["template"]["metadata"] = {
        "annotations": {"fake.kbox.io/exit-code": "1", "fake.kbox.io/exit-after": "0.1"}
    }
    assert kubectl(kc, "create", "-f", "-", stdin=json.dumps(failing)).returncode == 0
    # The fixture's short job_backoff_base (TEST_TIMERS) makes the two retries quick; Kubernetes'
    # 10 s + 20 s would outlast this wait.
    waited = kubectl(kc, "wait", "--for=condition=failed", "job/broken", "--timeout=20s")
    assert waited.returncode == 0, waited.stderr
    row = kubectl(kc, "get", "jobs", "broken", "--no-headers").stdout.split()
    assert row[1:3] == ["Failed", "0/1"]
    assert json.loads(kubectl(kc, "get", "job", "broken", "-o", "json").stdout)["status"]["failed"] == 3


def test_kubectl_refuses_an_invalid_job_in_one_line(kc: SyncCluster) -> None:
    body = json.loads(
        kubectl(kc, "create", "job", "norestart", "--image=busybox", "--dry-run=client", "-o", "json").stdout
    )
    body["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    refused = kubectl(kc, "create", "-f", "-", stdin=json.dumps(body))
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert refused.stderr.strip() == (
        'The Job "norestart" is invalid: spec.template.spec.restartPolicy: Required value: '
        'valid values: "OnFailure", "Never"'
    )


def test_ttl_after_finished_deletes_the_job_and_its_pods(kc: SyncCluster) -> None:
    body = json.loads(
        kubectl(kc, "create", "job", "brief", "--image=busybox", "--dry-run=client", "-o", "json").stdout
    )
    body["spec"]["ttlSecondsAfterFinished"] = 1
    assert kubectl(kc, "create", "-f", "-", stdin=json.dumps(body)).returncode == 0
    assert kubectl(kc, "wait", "--for=condition=complete", "job/brief", "--timeout=30s").returncode == 0
    until(lambda: "NotFound" in kubectl(kc, "get", "job", "brief").stderr, timeout=20)
    until(lambda: kubectl(kc, "get", "pods", "-l", "job-name=brief", "-o", "name").stdout == "", timeout=20)


def test_deleting_a_running_job_deletes_its_pods(kc: SyncCluster) -> None:
    body = json.loads(
        kubectl(kc, "create", "job", "long", "--image=busybox", "--dry-run=client", "-o", "json").stdout
    )
    body["spec"]["template"]["metadata"] = {"annotations": {"fake.kbox.io/exit-after": "600"}}
    assert kubectl(kc, "create", "-f", "-", stdin=json.dumps(body)).returncode == 0
    until(lambda: "Running" in kubectl(kc, "get", "pods", "-l", "job-name=long").stdout, timeout=20)
    # The garbage collector deletes the pod; the Job controller lets go of its tracking finalizer.
    assert kubectl(kc, "delete", "job", "long").returncode == 0
    until(lambda: kubectl(kc, "get", "pods", "-l", "job-name=long", "-o", "name").stdout == "", timeout=20)


async def test_with_a_failure_policy_a_deleted_pod_is_replaced_once_it_failed(c: Cluster) -> None:
    policy = {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}
    await create(c, job_body("careful", exit_after="60", backoffLimit=3, podFailurePolicy=policy))

    async def one_running() -> Obj | None:
        pods = [p for p in await job_pods(c, "careful") if p["status"].get("phase") == "Running"]
        return pods[0] if len(pods) == 1 else None

    first = await eventually(one_running)
    await c.client.delete(interface.PODS, first["metadata"]["name"], namespace="default")

    async def replaced() -> Obj | None:
        job = await get_job(c, "careful")
        names = {p["metadata"]["name"] for p in await job_pods(c, "careful")}
        if first["metadata"]["name"] not in names and len(names) == 1:
            return job
        return None

    job = await eventually(replaced)
    # podReplacementPolicy Failed: the pod counted once the kubelet reported it Failed.
    assert job["status"]["failed"] == 1 and condition(job, "Failed") is None


async def test_restart_policy_on_failure_counts_container_restarts(c: Cluster) -> None:
    body = job_body("restarts", exit_code=1, backoffLimit=1)
    body["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    await create(c, body)
    job = await finished(c, "restarts", "Failed")
    assert condition(job, "Failed")["reason"] == "BackoffLimitExceeded"  # type: ignore[index]
    # The one pod never failed by itself: it was running (restarting) when the Job gave up on it,
    # was deleted and counted as failed.
    assert job["status"]["failed"] == 1 and (await reasons(c, "restarts")).count("SuccessfulCreate") == 1


async def test_success_policy_completes_an_indexed_job_early(c: Cluster) -> None:
    policy = {"rules": [{"succeededIndexes": "1-2"}, {"succeededCount": 1}]}
    await create(
        c, job_body("enough", completionMode="Indexed", completions=3, parallelism=1, successPolicy=policy)
    )
    job = await finished(c, "enough", "Complete")
    complete, met = condition(job, "Complete"), condition(job, "SuccessCriteriaMet")
    assert complete is not None and complete["reason"] == "SuccessPolicy"
    assert met is not None and met["message"] == complete["message"] == "Matched rules at index 1"
    assert job["status"]["completedIndexes"] == "0" and job["status"]["succeeded"] == 1


async def test_success_policy_validation(c: Cluster) -> None:
    policy = {"rules": [{"succeededCount": 1}]}
    message = await invalid(c, job_body("bad", successPolicy=policy))
    assert 'spec.successPolicy: Invalid value: "NonIndexed": requires indexed completion mode' in message
    indexed = {"completionMode": "Indexed", "completions": 3}
    message = await invalid(
        c, job_body("bad", successPolicy={"rules": [{"succeededIndexes": "2-1"}]}, **indexed)
    )
    assert "spec.successPolicy.rules[0].succeededIndexes" in message
    message = await invalid(c, job_body("bad", successPolicy={"rules": [{"succeededCount": 4}]}, **indexed))
    assert "must be less than or equal to 3 (the number of specified completions)" in message
    assert "at least one of succeededCount or succeededIndexes" in await invalid(
        c, job_body("bad", successPolicy={"rules": [{}]}, **indexed)
    )


async def test_manual_selector_adopts_orphans_and_releases_pods_that_stop_matching(c: Cluster) -> None:
    orphan = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "stray",
            "labels": {"app": "manual"},
            "annotations": {jobpods_annotation("exit-after"): "60"},
        },
        "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox:1"}]},
    }
    await c.client.create(interface.PODS, orphan, namespace="default")
    body = job_body(
        "manual", exit_after="60", manualSelector=True, selector={"matchLabels": {"app": "manual"}}
    )
    body["spec"]["template"]["metadata"]["labels"] = {"app": "manual"}
    job = await create(c, body)

    async def adopted() -> Obj | None:
        pod = await c.client.get(interface.PODS, "stray", namespace="default")
        refs = pod["metadata"].get("ownerReferences") or []
        return pod if refs and refs[0]["uid"] == job["metadata"]["uid"] else None

    pod = await eventually(adopted)
    assert jobpods.TRACKING_FINALIZER in pod["metadata"]["finalizers"] and refs_controller(pod)
    # It runs for the Job: no pod of its own (completions 1, parallelism 1).

    async def counted() -> bool:
        mine = await c.client.list(interface.PODS, namespace="default", label_selector="app=manual")
        return (await get_job(c, "manual"))["status"].get("active") == 1 and len(mine["items"]) == 1

    await eventually(counted)

    await c.client.patch(
        interface.PODS, "stray", {"metadata": {"labels": {"app": "elsewhere"}}}, namespace="default"
    )

    async def released() -> bool:
        pod = await c.client.get(interface.PODS, "stray", namespace="default")
        mine = await c.client.list(interface.PODS, namespace="default", label_selector="app=manual")
        return (
            not pod["metadata"].get("ownerReferences")
            and jobpods.TRACKING_FINALIZER not in (pod["metadata"].get("finalizers") or [])
            and len(mine["items"]) == 1
            and mine["items"][0]["metadata"]["name"].startswith("manual-")
        )

    await eventually(released)


def refs_controller(pod: Obj) -> bool:
    return bool(pod["metadata"]["ownerReferences"][0].get("controller"))
