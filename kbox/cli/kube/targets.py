"""The objects a kubectl-style command names, found once for every command that acts on named objects.

``kbox delete``, ``scale``, ``wait`` and ``rollout`` all take kubectl's ways of naming objects:
``-f FILE|DIR|-``, ``TYPE/NAME...``, ``TYPE NAME...``, ``TYPE -l SELECTOR`` or ``TYPE --all``.
``Named`` holds those arguments as given; ``Named.find`` turns them into ``Target``s (resource,
namespace, name) in order, with kubectl's errors for combinations it refuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from kbox.cli.kube import manifests, session
from kbox.cli.kube.manifests import CommandError


class Target(NamedTuple):
    """One named object: its resource type, namespace (None for a cluster-scoped one) and name."""

    info: session.ResourceInfo
    namespace: str | None
    name: str

    @property
    def ref(self) -> str:
        """``deployment.apps/web``: how kubectl names the object in ``-o name`` and status lines."""
        return f"{self.info.kind_name}/{self.name}"

    def path(self, sub: str | None = None) -> str:
        """The object's URL path (or its subresource's)."""
        return self.info.path(self.namespace, self.name, sub)


@dataclass(frozen=True)
class Named:
    """A command's object arguments, as the user gave them."""

    args: tuple[str, ...]
    namespace: str | None = None
    all_namespaces: bool = False
    selector: str | None = None
    all_objects: bool = False
    filenames: tuple[str, ...] = ()
    recursive: bool = False

    async def find(self, api: session.Api) -> list[Target]:
        """The objects the arguments name, in order (a selector or ``--all`` lists them)."""
        if self.filenames:
            return await self._from_files(api)
        if not self.args:
            raise CommandError("you must provide one or more resources by argument or filename")
        ns = None if self.all_namespaces else (self.namespace or api.namespace)
        if any("/" in arg for arg in self.args):
            return await self._slashed(api, ns)
        infos = [await api.resolve(kind) for kind in self.args[0].split(",") if kind]
        names = self.args[1:]
        if names:
            self._no_selector_with_names()
            if len(infos) != 1:
                raise CommandError("names cannot be given with more than one resource type")
            return [Target(infos[0], ns if infos[0].namespaced else None, name) for name in names]
        if not (self.selector or self.all_objects):
            raise CommandError(
                f'resource(s) were provided, but no name was specified: use "{self.args[0]} NAME", '
                "-l SELECTOR or --all"
            )
        found: list[Target] = []
        for info in infos:
            listing = await api.client.list(
                info.resource, namespace=ns if info.namespaced else None, label_selector=self.selector
            )
            for item in listing.get("items") or ():
                meta = item.get("metadata") or {}
                found.append(
                    Target(info, meta.get("namespace") if info.namespaced else None, meta.get("name", ""))
                )
        return found

    async def _from_files(self, api: session.Api) -> list[Target]:
        if self.args:
            raise CommandError("when paths are provided, no resources may be specified")
        found: list[Target] = []
        for manifest in manifests.load(self.filenames, recursive=self.recursive):
            info = await api.resolve_kind(manifest.api_version, manifest.kind)
            target_ns = (manifest.namespace or self.namespace or api.namespace) if info.namespaced else None
            found.append(Target(info, target_ns, manifest.name))
        return found

    async def _slashed(self, api: session.Api, ns: str | None) -> list[Target]:
        if not all("/" in arg for arg in self.args):
            raise CommandError(
                "there is no need to specify a resource type as a separate argument when passing "
                "arguments in resource/name form"
            )
        self._no_selector_with_names()
        found: list[Target] = []
        for arg in self.args:
            kind, _, name = arg.partition("/")
            if not name:
                raise CommandError(
                    f'arguments in resource/name form must have a single resource and name: "{arg}"'
                )
            info = await api.resolve(kind)
            found.append(Target(info, ns if info.namespaced else None, name))
        return found

    def _no_selector_with_names(self) -> None:
        if self.selector or self.all_objects:
            raise CommandError("name cannot be provided when a selector or --all is specified")
