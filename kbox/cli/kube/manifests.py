"""Reading the objects ``-f FILE|DIR|-`` names, as kubectl's resource builder does.

A file holds one or more YAML (or JSON) documents; empty documents are skipped and a ``kind: List``
(or ``v1/List``, ``DeploymentList``...) contributes its items. A directory contributes its ``.yaml``,
``.yml`` and ``.json`` files in name order, its subdirectories too with ``-R``. ``-`` reads stdin once.

Everything a user can get wrong here (a missing file, YAML that does not parse, a document that is not
an object or lacks ``apiVersion``/``kind``) is a ``CommandError``: one ``error: ...`` line naming the file
(and the line, for syntax errors), exit code 1, before anything is sent to the server. The module also
holds the small output helpers the built-in commands share (kubectl's ``error:`` and
``Error from server (Reason): ...`` lines).
"""

from __future__ import annotations

import sys
from collections.abc import Coroutine, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

import click
import yaml

from kbox.api.errors import StatusError
from kbox.cli.kube import session

T = TypeVar("T")

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's is several times faster


class _Loader(_Base):  # type: ignore[misc]
    """A safe loader that leaves timestamps as the strings they are written as: kubectl's YAML-to-JSON
    conversion does the same, and a ``datetime`` could not be sent as JSON anyway."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _Base.yaml_implicit_resolvers.items()
}

EXTENSIONS = (".yaml", ".yml", ".json")
STDIN = "STDIN"


class CommandError(click.ClickException):
    """A user error, shown as kubectl shows it: ``error: <message>`` on stderr, exit code 1."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


@dataclass(frozen=True)
class Manifest:
    """One object read from a manifest, with where it came from (for messages)."""

    source: str  # the path as the user gave it (or STDIN)
    obj: dict[str, Any]

    @property
    def api_version(self) -> str:
        return str(self.obj["apiVersion"])

    @property
    def kind(self) -> str:
        return str(self.obj["kind"])

    @property
    def name(self) -> str:
        return str((self.obj.get("metadata") or {}).get("name") or "")

    @property
    def namespace(self) -> str | None:
        value = (self.obj.get("metadata") or {}).get("namespace")
        return str(value) if value else None


def load(
    filenames: Iterable[str], *, recursive: bool = False, stdin: IO[str] | None = None
) -> list[Manifest]:
    """Every object the ``-f`` arguments name, in order; a user error raises ``CommandError``."""
    manifests: list[Manifest] = []
    for filename in filenames:
        for source, text in _read(filename, recursive=recursive, stdin=stdin):
            manifests.extend(parse(text, source))
    if not manifests:
        raise CommandError("no objects passed to the command")
    return manifests


def _read(filename: str, *, recursive: bool, stdin: IO[str] | None) -> Iterator[tuple[str, str]]:
    if filename == "-":
        yield STDIN, (stdin or sys.stdin).read()
        return
    path = Path(filename)
    if path.is_dir():
        pattern = "**/*" if recursive else "*"
        files = sorted(p for p in path.glob(pattern) if p.is_file() and p.suffix in EXTENSIONS)
        for file in files:
            yield str(file), _text(file)
        return
    if not path.exists():
        raise CommandError(f'the path "{filename}" does not exist')
    yield filename, _text(path)


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CommandError(f"{path}: not a text file") from None
    except OSError as exc:
        raise CommandError(f"{path}: {exc.strerror or exc}") from None


def parse(text: str, source: str) -> list[Manifest]:
    """The objects in one file's text; a syntax error names ``source`` and the line."""
    documents: list[Any] = []
    try:
        documents.extend(yaml.load_all(text, Loader=_Loader))  # a safe loader: plain data only
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise CommandError(f"{source}{line}: {problem}") from None
    except yaml.YAMLError as exc:
        raise CommandError(f"{source}: {exc}") from None
    found: list[Manifest] = []
    for index, document in enumerate(documents, start=1):
        if document is None:
            continue
        found.extend(_objects(document, source, index))
    return found


def _objects(document: Any, source: str, index: int) -> Iterator[Manifest]:
    where = f"{source} (document {index})"
    if not isinstance(document, dict):
        raise CommandError(f"{where}: expected an object, found {type(document).__name__}")
    kind = document.get("kind")
    api_version = document.get("apiVersion")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(document.get("items"), list):
        for item in document["items"]:
            yield from _objects(item, source, index)
        return
    missing = [field for field, value in (("apiVersion", api_version), ("kind", kind)) if not value]
    if missing:
        name = (
            (document.get("metadata") or {}).get("name")
            if isinstance(document.get("metadata"), dict)
            else None
        )
        what = f' "{name}"' if name else ""
        raise CommandError(f"{where}: object{what} has no {' and no '.join(missing)}")
    if not isinstance(kind, str) or not isinstance(api_version, str):
        raise CommandError(f"{where}: apiVersion and kind must be strings")
    metadata = document.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise CommandError(f"{where}: metadata must be an object")
    yield Manifest(source, document)


def examples(*lines: str) -> str:
    """A command's ``--help`` epilog listing example invocations, one per line."""
    return "\b\nExamples:\n" + "".join(f"  {line}\n" for line in lines)


def server_error(exc: StatusError, *, action: str = "", source: str = "") -> str:
    """kubectl's line for a failed request: ``Error from server (NotFound): ...``."""
    context = f'error when {action} "{source}": ' if action and source else ""
    reason = exc.reason or "Unknown"
    return f"Error from server ({reason}): {context}{exc.message}"


class ServerError(click.ClickException):
    """A request the server refused, shown as kubectl shows it: ``Error from server (NotFound): ...``."""

    def __init__(self, error: StatusError) -> None:
        super().__init__(server_error(error))

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(self.format_message(), err=True)


async def _kubectl_errors(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return await coro
    except StatusError as exc:
        raise ServerError(exc) from None


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``session.run`` with server errors worded as kubectl words them."""
    return session.run(_kubectl_errors(coro))
