"""``kbox create``: create objects from manifests (never update), and two generators.

``kbox create -f FILE`` posts each object as written; an object that exists already is reported as
kubectl reports it (``Error from server (AlreadyExists): error when creating "f.yaml": ...``) and the
others are still created; the exit code is 1 if any failed. ``--save-config`` adds the
last-applied annotation so a later ``apply`` can take over.

``kbox create namespace NAME``, ``kbox create deployment NAME --image=IMG``, ``kbox create job NAME
--image=IMG [-- CMD...]``, ``kbox create job NAME --from=cronjob/CJ`` and ``kbox create cronjob NAME
--image=IMG --schedule=CRON [-- CMD...]`` build, client-side, the objects the ``kubectl create``
subcommands of the same names build (a deployment labels ``app=NAME`` and names a container after each
image; a job or cron job runs one container named after itself; a job made from a cron job copies its
job template and is owned by it, marked ``cronjob.kubernetes.io/instantiate: manual``).
"""

from __future__ import annotations

import re
from typing import Any

import click

from kbox.cli.kube import apply as apply_command
from kbox.cli.kube import manifests, session, threeway
from kbox.cli.kube.manifests import CommandError, Manifest

EXAMPLES = """
\b
Examples:
  kbox create -f deploy.yaml
  kbox create namespace staging
  kbox create deployment web --image=nginx:1.27 --replicas=3
  kbox create deployment web --image=busybox --dry-run=client -o yaml
  kbox create job once --image=busybox -- echo hello
  kbox create job now --from=cronjob/nightly
  kbox create cronjob nightly --image=busybox --schedule="0 3 * * *" -- date
"""


@click.group(
    "create",
    epilog=EXAMPLES,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@apply_command.write_options
@click.option("--save-config", is_flag=True, help="Record the last-applied annotation for a later apply.")
@session.profile_option
@click.pass_context
def create(
    ctx: click.Context,
    filenames: tuple[str, ...],
    recursive: bool,
    namespace: str | None,
    dry_run: str,
    output: str | None,
    validate: str,
    save_config: bool,
    profile: str | None,
) -> None:
    """Create objects from manifests (-f), or a namespace, deployment, job or cron job by name."""
    if ctx.invoked_subcommand is not None:
        if filenames:
            raise CommandError("-f cannot be combined with a create subcommand")
        ctx.obj = {"namespace": namespace, "dry_run": dry_run, "output": output, "profile": profile}
        return
    if not filenames:
        raise CommandError(
            "must specify one of -f and -k (or a subcommand: namespace, deployment, job, cronjob)"
        )
    loaded = manifests.load(filenames, recursive=recursive)
    failed = manifests.run(
        create_all(
            loaded,
            namespace=namespace,
            dry_run=dry_run,
            output=output,
            profile=profile,
            save_config=save_config,
            validate=validate,
        )
    )
    if failed:
        raise click.exceptions.Exit(1)


async def create_all(
    loaded: list[Manifest],
    *,
    namespace: str | None,
    dry_run: str,
    output: str | None,
    profile: str | None,
    save_config: bool = False,
    validate: str = "strict",
) -> bool:
    """Create each object; report failures one line each and go on. True if any failed."""
    report = apply_command.Report(output, dry_run)
    async with session.connect(profile) as api:
        for manifest in loaded:
            with report.each(manifest, action="creating"):
                info, target_ns = await apply_command.resolve(api, manifest, namespace)
                body = dict(manifest.obj)
                if save_config:
                    if target_ns is not None:
                        body["metadata"] = {**(body.get("metadata") or {}), "namespace": target_ns}
                    body = threeway.with_last_applied(body)
                if dry_run == "client":
                    created = body
                else:
                    params = {
                        **apply_command.dry_run_params(dry_run, validate),
                        "fieldManager": "kubectl-create",
                    }
                    created = await api.request("POST", info.path(target_ns), params=params, body=body)
                name = (created.get("metadata") or {}).get("name") or manifest.name
                report.done(f"{info.kind_name}/{name}", "created", created)
    return report.finish()


def generator_options(f: Any) -> Any:
    """-n, --dry-run, -o and --profile on a generator too (kubectl takes them after the name)."""
    for option in (
        session.profile_option,
        apply_command.output_option,
        apply_command.dry_run_option,
        apply_command.namespace_option,
    ):
        f = option(f)
    return f


def _generated(ctx: click.Context, obj: dict[str, Any], **given: Any) -> None:
    """Create one generated object; options given to the subcommand win over the group's."""
    options = {**(ctx.obj or {})}
    options.update({k: v for k, v in given.items() if v is not None and v != "none"})
    failed = manifests.run(
        create_all(
            [Manifest("(generated)", obj)],
            namespace=options.get("namespace"),
            dry_run=options.get("dry_run") or "none",
            output=options.get("output"),
            profile=options.get("profile"),
        )
    )
    if failed:
        raise click.exceptions.Exit(1)


@create.command(
    "namespace",
    epilog=manifests.examples(
        "kbox create namespace staging", "kbox create namespace staging --dry-run=client -o yaml"
    ),
)
@click.argument("name")
@generator_options
@click.pass_context
def create_namespace(ctx: click.Context, /, name: str, **options: Any) -> None:
    """Create a namespace: kbox create namespace NAME."""
    _generated(ctx, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}, **options)


def container_name(image: str) -> str:
    """A container name from an image, as kubectl derives it: ``registry/team/web:1.2`` → ``web``."""
    base = image.rsplit("/", 1)[-1].split("@", 1)[0].split(":", 1)[0]
    return re.sub(r"[^a-z0-9-]+", "-", base.lower()).strip("-") or "container"


@create.command(
    "deployment",
    epilog=manifests.examples(
        "kbox create deployment web --image=nginx:1.27",
        "kbox create deployment web --image=nginx --replicas=3 --port=80 -n shop",
    ),
)
@click.argument("name")
@click.option("--image", "images", multiple=True, required=True, help="Container image (repeatable).")
@click.option("--replicas", "-r", type=click.IntRange(min=0), default=1, show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="The container port to expose.")
@generator_options
@click.pass_context
def create_deployment(
    ctx: click.Context, /, name: str, images: tuple[str, ...], replicas: int, port: int | None, **options: Any
) -> None:
    """Create a deployment running IMAGE: kbox create deployment NAME --image=IMAGE."""
    containers: list[dict[str, Any]] = []
    for image in images:
        container: dict[str, Any] = {"name": container_name(image), "image": image, "resources": {}}
        if port is not None:
            container["ports"] = [{"containerPort": port}]
        containers.append(container)
    labels = {"app": name}
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "strategy": {},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": containers}},
        },
    }
    _generated(ctx, obj, **options)


def _single_container(name: str, image: str, command: tuple[str, ...], restart: str) -> dict[str, Any]:
    """The pod template kubectl's job and cronjob generators write: one container named NAME."""
    container: dict[str, Any] = {"name": name, "image": image, "resources": {}}
    if command:
        container["command"] = list(command)
    return {
        "metadata": {"creationTimestamp": None},
        "spec": {"containers": [container], "restartPolicy": restart},
    }


@create.command(
    "job",
    epilog=manifests.examples(
        "kbox create job once --image=busybox -- echo hello",
        "kbox create job now --from=cronjob/nightly -n batch",
    ),
)
@click.argument("name")
@click.argument("command", nargs=-1)
@click.option("--image", default=None, help="The image to run.")
@click.option("--from", "source", default=None, metavar="cronjob/NAME", help="A cron job to copy.")
@generator_options
@click.pass_context
def create_job(
    ctx: click.Context,
    /,
    name: str,
    command: tuple[str, ...],
    image: str | None,
    source: str | None,
    **options: Any,
) -> None:
    """Create a job: kbox create job NAME --image=IMAGE [-- COMMAND...] or --from=cronjob/NAME."""
    if bool(image) == bool(source):
        raise CommandError("either --image or --from must be specified")
    if command and source:
        raise CommandError("cannot specify --from and command")
    if image:
        obj = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name, "creationTimestamp": None},
            "spec": {"template": _single_container(name, image, command, "Never")},
            "status": {},
        }
    else:
        namespace = options.get("namespace") or (ctx.obj or {}).get("namespace")
        profile = options.get("profile") or (ctx.obj or {}).get("profile")
        cron_job = manifests.run(_read_cron_job(profile, namespace, str(source)))
        obj = job_from_cron_job(name, cron_job, namespace)
    _generated(ctx, obj, **options)


async def _read_cron_job(profile: str | None, namespace: str | None, source: str) -> dict[str, Any]:
    """The cron job ``--from`` names (``cronjob/NAME``, or any spelling of the type kubectl takes)."""
    kind, _, cj_name = source.partition("/")
    if not cj_name:
        raise CommandError(f'--from must be TYPE/NAME (cronjob/NAME), not "{source}"')
    async with session.connect(profile) as api:
        info = await api.resolve(kind)
        if (info.group, info.kind) != ("batch", "CronJob"):
            raise CommandError(f"from must be an existing cronjob, not {info.qualified}")
        found: dict[str, Any] = await api.request("GET", info.path(namespace or api.namespace, cj_name))
        return found


def job_from_cron_job(name: str, cron_job: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
    """A job run by hand from a cron job's template, owned by the cron job, as kubectl makes it (in
    ``namespace`` when one was given with -n, else in the profile's default, as the cron job is)."""
    template = (cron_job.get("spec") or {}).get("jobTemplate") or {}
    template_meta = template.get("metadata") or {}
    cj_meta = cron_job.get("metadata") or {}
    metadata: dict[str, Any] = {
        "name": name,
        "creationTimestamp": None,
        "annotations": {
            "cronjob.kubernetes.io/instantiate": "manual",
            **(template_meta.get("annotations") or {}),
        },
        "ownerReferences": [
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "name": cj_meta.get("name", ""),
                "uid": cj_meta.get("uid", ""),
                "controller": True,
            }
        ],
    }
    if template_meta.get("labels"):
        metadata["labels"] = template_meta["labels"]
    if namespace:
        metadata["namespace"] = namespace
    spec = template.get("spec") or {}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": spec, "status": {}}


@create.command(
    "cronjob",
    epilog=manifests.examples(
        'kbox create cronjob nightly --image=busybox --schedule="0 3 * * *" -- date',
        'kbox create cronjob tick --image=busybox --schedule="*/5 * * * *" --restart=Never',
    ),
)
@click.argument("name")
@click.argument("command", nargs=-1)
@click.option("--image", required=True, help="The image to run.")
@click.option("--schedule", required=True, help="When to run, in cron format (0 3 * * *).")
@click.option(
    "--restart",
    type=click.Choice(["OnFailure", "Never"]),
    default="OnFailure",
    show_default=True,
    help="The jobs' pod restart policy.",
)
@generator_options
@click.pass_context
def create_cron_job(
    ctx: click.Context,
    /,
    name: str,
    command: tuple[str, ...],
    image: str,
    schedule: str,
    restart: str,
    **options: Any,
) -> None:
    """Create a cron job: kbox create cronjob NAME --image=IMAGE --schedule=CRON [-- COMMAND...]."""
    obj = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "creationTimestamp": None},
        "spec": {
            "schedule": schedule,
            "jobTemplate": {
                "metadata": {"name": name, "creationTimestamp": None},
                "spec": {"template": _single_container(name, image, command, restart)},
            },
        },
        "status": {},
    }
    _generated(ctx, obj, **options)
