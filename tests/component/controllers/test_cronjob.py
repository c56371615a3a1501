"""The CronJob controller against the apiserver, in jumpable time (a ManualClock): a Job per schedule
time with the template's labels and annotations, the scheduled-timestamp annotation and a controller
reference; status.active, lastScheduleTime and lastSuccessfulTime; concurrencyPolicy Forbid and
Replace; suspend; history limits; a long downtime starting only the most recent missed run with the
TooManyMissedTimes warning; a time zone; and the API's validation of schedules and time zones.

Jobs are finished by writing their status here (no Job controller runs), so these tests do not depend
on it; whether a Job's pods run is the Job controller's business."""

from __future__ import annotations

import datetime
import json
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from kbox.api.errors import StatusError
from kbox.client import interface
from kbox.controllers import cronjob
from kbox.controllers.cronjob import CRONJOBS, JOBS, CronJobController
from kbox.controllers.cronschedule import UTC, ManualClock
from kbox.testing.cluster import Cluster as EmbeddedCluster
from kbox.testing.cluster import SyncCluster
from tests.component.controllers import Cluster, cluster, eventually, template
from tests.support.apiserver import KUBECTL
from tests.support.wait import until

Obj = dict[str, Any]
NS = "default"


@pytest.fixture
async def c(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with cluster(tmp_path, nodes=0) as running:
        yield running


@pytest.fixture
async def clock(c: Cluster) -> ManualClock:
    clock = ManualClock()
    c.start(CronJobController(c.factory, c.client, clock=clock), workers=1)
    return clock


def cronjob_body(name: str, schedule: str = "* * * * *", **spec: Any) -> Obj:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name},
        "spec": {
            "schedule": schedule,
            "jobTemplate": {
                "metadata": {"labels": {"app": name}, "annotations": {"note": "from-template"}},
                "spec": {"template": job_template(name)},
            },
            **spec,
        },
    }


def job_template(name: str) -> Obj:
    """The pod template of a Job: a Job's pods never restart in place forever (Never)."""
    pod = template({"app": name})
    pod["spec"]["restartPolicy"] = "Never"
    return pod


async def create(c: Cluster, body: Obj) -> Obj:
    created: Obj = await c.client.create(CRONJOBS, body, namespace=NS)
    return created


async def jobs_of(c: Cluster, name: str) -> list[Obj]:
    found = await c.client.list(JOBS, namespace=NS, label_selector=f"app={name}")
    return sorted(found["items"], key=lambda j: j["metadata"]["name"])


def next_minute(when: datetime.datetime) -> datetime.datetime:
    return when.replace(second=0, microsecond=0) + datetime.timedelta(minutes=1)


def to_next_minute(clock: ManualClock) -> datetime.datetime:
    """Jump just past the next whole minute; returns that minute."""
    minute = next_minute(clock.now())
    clock.advance_to(minute + datetime.timedelta(seconds=1))
    return minute


async def wait_jobs(c: Cluster, name: str, count: int) -> list[Obj]:
    async def check() -> list[Obj] | None:
        found = await jobs_of(c, name)
        return found if len(found) == count else None

    result: list[Obj] = await eventually(check, message=f"{count} jobs of {name}")
    return result


async def wait_status(c: Cluster, name: str, predicate: Any) -> Obj:
    async def check() -> Obj | None:
        cj = await c.client.get(CRONJOBS, name, namespace=NS)
        return cj if predicate(cj.get("status") or {}) else None

    result: Obj = await eventually(check, message=f"status of {name}")
    return result


async def reasons(c: Cluster, name: str) -> dict[str, list[str]]:
    found = await c.client.list(interface.EVENTS, namespace=NS, field_selector=f"involvedObject.name={name}")
    result: dict[str, list[str]] = {}
    for event in found["items"]:
        result.setdefault(event["reason"], []).append(event["message"])
    return result


async def wait_event(c: Cluster, name: str, reason: str) -> list[str]:
    async def check() -> list[str] | None:
        return (await reasons(c, name)).get(reason)

    result: list[str] = await eventually(check, message=f"{reason} event on {name}")
    return result


async def finish(c: Cluster, job: Obj, condition: str = "Complete") -> str:
    """Write a finished status on ``job`` as the Job controller would; returns its completion time."""
    now = datetime.datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    first = "SuccessCriteriaMet" if condition == "Complete" else "FailureTarget"
    status: Obj = {
        "startTime": now,
        "conditions": [
            {"type": first, "status": "True", "lastTransitionTime": now, "lastProbeTime": now},
            {"type": condition, "status": "True", "lastTransitionTime": now, "lastProbeTime": now},
        ],
    }
    if condition == "Complete":
        status.update(completionTime=now, succeeded=1)
    else:
        status.update(failed=1)
    await c.client.patch(
        JOBS, job["metadata"]["name"], {"status": status}, namespace=NS, subresource="status"
    )
    return now


async def test_runs_a_job_at_each_schedule_time_and_tracks_it(c: Cluster, clock: ManualClock) -> None:
    created = await create(c, cronjob_body("tick"))
    minute = to_next_minute(clock)
    [job] = await wait_jobs(c, "tick", 1)
    metadata = job["metadata"]
    assert metadata["name"] == f"tick-{int(minute.timestamp()) // 60}"
    assert metadata["labels"] == {"app": "tick"}
    assert metadata["annotations"] == {
        "note": "from-template",
        "batch.kubernetes.io/cronjob-scheduled-timestamp": minute.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    assert metadata["ownerReferences"] == [
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "name": "tick",
            "uid": created["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1"

    cj = await wait_status(c, "tick", lambda s: s.get("active"))
    assert cj["status"]["lastScheduleTime"] == minute.strftime("%Y-%m-%dT%H:%M:%SZ")
    [ref] = cj["status"]["active"]
    assert (ref["kind"], ref["name"], ref["uid"], ref["apiVersion"]) == (
        "Job", metadata["name"], metadata["uid"], "batch/v1"
    )  # fmt: skip
    assert "lastSuccessfulTime" not in cj["status"]
    created_messages = await wait_event(c, "tick", "SuccessfulCreate")
    assert created_messages == [f"Created job {metadata['name']}"]

    completed = await finish(c, job)
    cj = await wait_status(c, "tick", lambda s: not s.get("active") and s.get("lastSuccessfulTime"))
    assert cj["status"]["lastSuccessfulTime"] == completed
    saw = await wait_event(c, "tick", "SawCompletedJob")
    assert saw == [f"Saw completed job: {metadata['name']}, condition: Complete"]

    second = to_next_minute(clock)
    jobs = await wait_jobs(c, "tick", 2)
    assert jobs[1]["metadata"]["name"] == f"tick-{int(second.timestamp()) // 60}"


async def test_an_active_job_deleted_by_hand_leaves_the_active_list(c: Cluster, clock: ManualClock) -> None:
    await create(c, cronjob_body("lost"))
    to_next_minute(clock)
    [job] = await wait_jobs(c, "lost", 1)
    await wait_status(c, "lost", lambda s: s.get("active"))
    await c.client.delete(JOBS, job["metadata"]["name"], namespace=NS)
    await wait_status(c, "lost", lambda s: not s.get("active"))
    assert await wait_event(c, "lost", "MissingJob") == [
        f"Active job went missing: {job['metadata']['name']}"
    ]


async def test_a_new_schedule_starts_at_its_next_time_not_at_a_missed_one(c: Cluster) -> None:
    clock = ManualClock()
    controller = CronJobController(c.factory, c.client, clock=clock)
    c.start(controller, workers=1)
    await create(c, cronjob_body("edited", "0 0 1 1 *"))
    await eventually(lambda: controller.cronjobs.indexer.get(f"{NS}/edited"), message="the CronJob seen")
    clock.advance(150)  # two whole minutes pass; the yearly schedule is not due
    await c.client.patch(CRONJOBS, "edited", {"spec": {"schedule": "* * * * *"}}, namespace=NS)

    def settled() -> bool:
        cached = controller.cronjobs.indexer.get(f"{NS}/edited")
        seen = cached is not None and cached["spec"]["schedule"] == "* * * * *"
        return seen and not controller.queue.processing and len(controller.queue) == 0

    await eventually(settled, message="the edit seen and the queue idle")
    assert await jobs_of(c, "edited") == []  # the minutes the new schedule "missed" do not run
    minute = to_next_minute(clock)
    [job] = await wait_jobs(c, "edited", 1)
    assert job["metadata"]["name"] == f"edited-{int(minute.timestamp()) // 60}"


async def test_forbid_waits_for_the_active_job_and_replace_replaces_it(
    c: Cluster, clock: ManualClock
) -> None:
    await create(c, cronjob_body("forbid", concurrencyPolicy="Forbid"))
    await create(c, cronjob_body("replace", concurrencyPolicy="Replace"))
    to_next_minute(clock)
    [first_forbid] = await wait_jobs(c, "forbid", 1)
    [first_replace] = await wait_jobs(c, "replace", 1)
    await wait_status(c, "forbid", lambda s: s.get("active"))
    await wait_status(c, "replace", lambda s: s.get("active"))

    second = to_next_minute(clock)
    second_name = f"replace-{int(second.timestamp()) // 60}"

    async def replaced() -> list[Obj] | None:
        found = await jobs_of(c, "replace")
        names = [j["metadata"]["name"] for j in found if not j["metadata"].get("deletionTimestamp")]
        return found if names == [second_name] else None

    await eventually(replaced, message="replace's first job replaced by the second")
    cj = await wait_status(
        c, "replace", lambda s: [r["name"] for r in s.get("active") or []] == [second_name]
    )
    assert cj["status"]["lastScheduleTime"] == second.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert await wait_event(c, "replace", "SuccessfulDelete") == [
        f"Deleted job {first_replace['metadata']['name']}"
    ]

    await wait_event(c, "forbid", "JobAlreadyActive")
    assert [j["metadata"]["name"] for j in await jobs_of(c, "forbid")] == [first_forbid["metadata"]["name"]]
    cj = await c.client.get(CRONJOBS, "forbid", namespace=NS)
    assert [r["name"] for r in cj["status"]["active"]] == [first_forbid["metadata"]["name"]]

    # Once the running job finishes, the time it held back is still the most recent one and runs.
    await finish(c, first_forbid)
    jobs = await wait_jobs(c, "forbid", 2)
    assert jobs[1]["metadata"]["name"] == f"forbid-{int(second.timestamp()) // 60}"


async def test_suspend_and_history_limits(c: Cluster, clock: ManualClock) -> None:
    await create(c, cronjob_body("kept", successfulJobsHistoryLimit=1, failedJobsHistoryLimit=0))
    await create(c, cronjob_body("paused", suspend=True))
    to_next_minute(clock)
    [first] = await wait_jobs(c, "kept", 1)
    await finish(c, first)
    await wait_status(c, "kept", lambda s: s.get("lastSuccessfulTime") and not s.get("active"))
    to_next_minute(clock)
    jobs = await wait_jobs(c, "kept", 2)
    second = jobs[1]
    await finish(c, second)

    async def only_second() -> bool:
        names = [j["metadata"]["name"] for j in await jobs_of(c, "kept")]
        return names == [second["metadata"]["name"]]

    await eventually(only_second, message="the older successful job deleted past the history limit")
    to_next_minute(clock)
    third = (await wait_jobs(c, "kept", 2))[1]
    await finish(c, third, condition="Failed")  # failedJobsHistoryLimit 0: deleted at once

    async def failed_gone() -> bool:
        names = [j["metadata"]["name"] for j in await jobs_of(c, "kept")]
        return names == [second["metadata"]["name"]]

    await eventually(failed_gone, message="the failed job deleted (limit 0)")
    cj = await wait_status(c, "kept", lambda s: not s.get("active"))
    assert "SawCompletedJob" in await reasons(c, "kept")
    assert cj["status"]["lastScheduleTime"]

    # Three schedule times passed; the suspended CronJob started nothing, and resumes when unsuspended.
    assert await jobs_of(c, "paused") == []
    assert "lastScheduleTime" not in (
        (await c.client.get(CRONJOBS, "paused", namespace=NS)).get("status") or {}
    )
    await c.client.patch(CRONJOBS, "paused", {"spec": {"suspend": False}}, namespace=NS)
    # Unsuspended within the minute of a missed time: that time runs now (no deadline set).
    await wait_jobs(c, "paused", 1)


async def test_a_long_downtime_starts_only_the_most_recent_missed_time(c: Cluster) -> None:
    """Created, then the controller is away for three hours: one Job on return, not 180."""
    clock = ManualClock()
    await create(c, cronjob_body("late"))
    await create(c, cronjob_body("deadline", startingDeadlineSeconds=5))
    back = next_minute(clock.now() + datetime.timedelta(hours=3)) + datetime.timedelta(seconds=30)
    clock.advance_to(back)
    c.start(CronJobController(c.factory, c.client, clock=clock), workers=1)
    [job] = await wait_jobs(c, "late", 1)
    most_recent = back.replace(second=0)
    assert job["metadata"]["name"] == f"late-{int(most_recent.timestamp()) // 60}"
    warning = await wait_event(c, "late", "TooManyMissedTimes")
    assert warning == [
        "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew"
    ]
    cj = await wait_status(c, "late", lambda s: s.get("lastScheduleTime"))
    assert cj["status"]["lastScheduleTime"] == most_recent.strftime("%Y-%m-%dT%H:%M:%SZ")
    # 30 s after the last time with a 5 s deadline: nothing to start now, the next minute runs.
    assert await jobs_of(c, "deadline") == []
    assert "TooManyMissedTimes" not in await reasons(c, "deadline")
    to_next_minute(clock)
    await wait_jobs(c, "deadline", 1)
    await wait_jobs(c, "late", 2)


async def test_time_zone_sets_the_hour_and_the_annotation(c: Cluster) -> None:
    start = datetime.datetime(2026, 7, 1, 6, 59, 30, tzinfo=UTC)  # 08:59:30 in Paris (CEST, +02:00)
    clock = ManualClock(start)
    body = cronjob_body("paris", "0 9 * * *", timeZone="Europe/Paris")
    # The apiserver stamps creation with the real time; pretend the CronJob was made before ``start``.
    await create(c, body)
    await c.client.patch(
        CRONJOBS, "paris", {"status": {"lastScheduleTime": "2026-06-30T07:00:00Z"}}, namespace=NS,
        subresource="status",
    )  # fmt: skip
    c.start(CronJobController(c.factory, c.client, clock=clock), workers=1)
    clock.advance(31)
    [job] = await wait_jobs(c, "paris", 1)
    nine = datetime.datetime(2026, 7, 1, 7, 0, tzinfo=UTC)
    assert job["metadata"]["name"] == f"paris-{int(nine.timestamp()) // 60}"
    assert job["metadata"]["annotations"][cronjob.SCHEDULED_TIMESTAMP] == "2026-07-01T09:00:00+02:00"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"schedule": "61 * * * *"}, 'spec.schedule: Invalid value: "61 * * * *": end of range (61) above '
         "maximum (59): 61"),
        ({"schedule": "* * *"}, 'spec.schedule: Invalid value: "* * *": expected exactly 5 fields, found 3: '
         "[* * *]"),
        ({"schedule": "@fortnightly"}, 'spec.schedule: Invalid value: "@fortnightly": unrecognized descriptor: '
         "@fortnightly"),
        ({"schedule": "CRON_TZ=UTC * * * * *"}, 'spec.schedule: Invalid value: "CRON_TZ=UTC * * * * *": cannot '
         "use TZ or CRON_TZ in schedule, use timeZone field instead"),
        ({"timeZone": "Europe/Pariss"}, 'spec.timeZone: Invalid value: "Europe/Pariss": unknown time zone '
         "Europe/Pariss"),
        ({"timeZone": "Local"}, 'spec.timeZone: Invalid value: "Local": timeZone must be an explicit time zone '
         "as defined in https://www.iana.org/time-zones"),
        ({"startingDeadlineSeconds": -1}, "spec.startingDeadlineSeconds: Invalid value: -1: must be greater than "
         "or equal to 0"),
        ({"concurrencyPolicy": "Sometimes"}, 'spec.concurrencyPolicy: Unsupported value: "Sometimes": supported '
         'values: "Allow", "Forbid", "Replace"'),
    ],
)  # fmt: skip
async def test_validation_words_errors_as_kube_apiserver(c: Cluster, spec: Obj, message: str) -> None:
    body = cronjob_body("bad")
    body["spec"].update(spec)
    with pytest.raises(StatusError) as caught:
        await create(c, body)
    assert caught.value.code == 422
    assert message in caught.value.message


async def test_validation_accepts_the_forms_kubernetes_accepts(c: Cluster) -> None:
    for n, schedule in enumerate(["@hourly", "@every 90m", "*/5 9-17 ? JAN-DEC mon-fri", "0 0 1,15 * *"]):
        await create(c, cronjob_body(f"ok-{n}", schedule, timeZone="America/New_York"))
    with pytest.raises(StatusError) as caught:
        await create(c, cronjob_body("x" * 53))
    assert "must be no more than 52 characters" in caught.value.message


# -- the embedded cluster and the real kubectl ---------------------------------------------------


@pytest.fixture(scope="module")
def kc() -> Iterator[tuple[SyncCluster, ManualClock]]:
    # Five minutes behind the real time, so every schedule time the tests reach is in the past for
    # the apiserver too (kubectl's LAST SCHEDULE shows an age, not a time to come).
    clock = ManualClock(datetime.datetime.now(UTC) - datetime.timedelta(minutes=5))
    with EmbeddedCluster(runtime="fake", cronjob_clock=clock) as running:
        yield running, clock


def kubectl(kc: SyncCluster, *args: str) -> subprocess.CompletedProcess[str]:
    cache = Path(kc.state_dir) / "kubectl-cache"
    return subprocess.run(
        [KUBECTL, f"--kubeconfig={kc.kubeconfig_path}", f"--cache-dir={cache}", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_kubectl_create_get_and_create_job_from_cronjob(kc: tuple[SyncCluster, ManualClock]) -> None:
    cluster_, clock = kc
    made = kubectl(
        cluster_, "create", "cronjob", "tick", "--image=busybox", "--schedule=*/1 * * * *", "--", "true"
    )
    assert made.returncode == 0, made.stderr
    listed = kubectl(cluster_, "get", "cronjobs")
    header, row = listed.stdout.splitlines()
    assert header.split() == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"]
    assert row.split()[:10] == ["tick", "*/1", "*", "*", "*", "*", "<none>", "False", "0", "<none>"]

    # kubectl builds the Job client-side from the template; it validates, runs and completes.
    manual = kubectl(cluster_, "create", "job", "manual-1", "--from=cronjob/tick")
    assert manual.returncode == 0, manual.stderr
    waited = kubectl(cluster_, "wait", "--for=condition=complete", "job/manual-1", "--timeout=30s")
    assert waited.returncode == 0, waited.stderr
    job = json.loads(kubectl(cluster_, "get", "job", "manual-1", "-o", "json").stdout)
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"

    # The CronJob last ran ten minutes ago (by the apiserver's clock): the controller's clock, five
    # minutes behind, finds the minute it is at due, and the Job controller runs that Job to completion.
    if clock.now().second >= 50:  # keep the minute from turning between here and the controller's sync
        to_next_minute(clock)
    ten_ago = (datetime.datetime.now(UTC) - datetime.timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    patched = kubectl(
        cluster_, "patch", "cronjob", "tick", "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": {"lastScheduleTime": ten_ago}}),
    )  # fmt: skip
    assert patched.returncode == 0, patched.stderr
    first = clock.now().replace(second=0, microsecond=0)
    completed_run(cluster_, f"tick-{int(first.timestamp()) // 60}", first)
    row = kubectl(cluster_, "get", "cronjobs", "tick", "--no-headers").stdout.split()
    assert row[6:9] == ["<none>", "False", "0"]
    assert row[9].endswith(("m", "s")) and row[9][0].isdigit(), row  # an age such as 4m59s

    # The next minute, by jumping the controller's clock from the test's thread.
    minute = to_next_minute(clock)
    completed_run(cluster_, f"tick-{int(minute.timestamp()) // 60}", minute)


def completed_run(cluster_: SyncCluster, name: str, scheduled: datetime.datetime) -> None:
    """Job ``name`` appears, completes, and the CronJob records it."""
    until(lambda: kubectl(cluster_, "get", "job", name).returncode == 0)
    waited = kubectl(cluster_, "wait", "--for=condition=complete", f"job/{name}", "--timeout=30s")
    assert waited.returncode == 0, waited.stderr

    def recorded() -> Obj | None:
        cj: Obj = json.loads(kubectl(cluster_, "get", "cronjob", "tick", "-o", "json").stdout)
        status = cj.get("status") or {}
        last = status.get("lastScheduleTime")
        done = last == scheduled.strftime("%Y-%m-%dT%H:%M:%SZ") and not status.get("active")
        return cj if done and status.get("lastSuccessfulTime") else None

    until(recorded)


def test_kubectl_shows_a_bad_schedule_in_one_line(kc: tuple[SyncCluster, ManualClock]) -> None:
    cluster_, _ = kc
    refused = kubectl(cluster_, "create", "cronjob", "bad", "--image=busybox", "--schedule=61 * * * *")
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        'error: failed to create cronjob: CronJob.batch "bad" is invalid: spec.schedule: Invalid value: '
        '"61 * * * *": end of range (61) above maximum (59): 61'
    ]
