"""The seam between CRD serving and the structural-schema engine (:mod:`kbox.api.structural`).

Serving needs five things from a CRD version's ``schema.openAPIV3Schema``: prune, default and validate
objects, report why a schema is not structural, warn about what is not enforced (CEL rules), and a
Table printer from ``additionalPrinterColumns``. The engine is written alongside this package; until
it is importable, :func:`load` answers with a schema that accepts everything (no pruning, no
defaults) and the printer is kube-apiserver's default for custom resources, ``NAME`` and ``AGE``.
"""

from __future__ import annotations

import collections
import datetime
import importlib
import json
import logging
from typing import Any, Protocol

from kbox.api import tables
from kbox.api.errors import FieldError

_log = logging.getLogger(__name__)

Obj = dict[str, Any]


class VersionSchema(Protocol):
    """What serving uses of one version's schema (:class:`kbox.api.structural.Schema`)."""

    def structural_errors(self) -> list[str]: ...
    def schema_errors(self, path: str) -> list[FieldError]: ...
    def normalize(self, obj: Obj) -> list[str]: ...
    def prune(self, obj: Obj) -> list[str]: ...
    def validate(self, obj: Obj) -> list[FieldError]: ...
    def validate_update(self, obj: Obj, old: Obj) -> list[FieldError]: ...
    def validate_status(self, obj: Obj) -> list[FieldError]: ...
    def warnings(self) -> list[str]: ...
    def list_types(self) -> dict[str, Any]: ...


class AcceptAll:
    """A schema that prunes nothing, defaults nothing and accepts every object (no engine)."""

    def structural_errors(self) -> list[str]:
        return []

    def schema_errors(self, path: str) -> list[FieldError]:
        return []

    def normalize(self, obj: Obj) -> list[str]:
        return []

    def prune(self, obj: Obj) -> list[str]:
        return []

    def validate(self, obj: Obj) -> list[FieldError]:
        return []

    def validate_update(self, obj: Obj, old: Obj) -> list[FieldError]:
        return []

    def validate_status(self, obj: Obj) -> list[FieldError]:
        return []

    def warnings(self) -> list[str]:
        return []

    def list_types(self) -> dict[str, Any]:
        return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def _engine() -> Any:
    try:
        module = importlib.import_module("kbox.api.structural")
    except ImportError:
        return None
    if not hasattr(module, "Schema") or not hasattr(module, "printer_for_columns"):
        return None  # not complete yet
    return module


_compiled: collections.OrderedDict[str, VersionSchema] = collections.OrderedDict()
CACHE_SIZE = 128
"""Compiled schemas kept (by their JSON): a big CRD's takes a few hundred milliseconds to compile, and
validation, warnings and serving each need it on every write of the CRD."""


def load(version: Obj) -> VersionSchema:
    """The schema of a CRD ``spec.versions[]`` entry; raises ``ValueError`` when it is malformed.
    Compiled schemas are shared (they are not changed by use)."""
    engine = _engine()
    if engine is None or not (version.get("schema") or {}).get("openAPIV3Schema"):
        return AcceptAll()
    key = json.dumps(version.get("schema"), sort_keys=True, separators=(",", ":"))
    found = _compiled.get(key)
    if found is not None:
        _compiled.move_to_end(key)
        return found
    schema: VersionSchema = engine.Schema.from_crd_version(version)
    _compiled[key] = schema
    while len(_compiled) > CACHE_SIZE:
        _compiled.popitem(last=False)
    return schema


def _age_cells(obj: Obj, now: datetime.datetime) -> list[Any]:
    metadata = obj.get("metadata") or {}
    created = metadata.get("creationTimestamp")
    age = "<unknown>"
    if isinstance(created, str) and created:
        try:
            moment = datetime.datetime.fromisoformat(created.replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is not None:
            when = now if now.tzinfo is not None else now.replace(tzinfo=datetime.UTC)
            age = tables.human_duration(when - moment)
    return [str(metadata.get("name", "")), age]


DEFAULT_PRINTER = tables.Printer(
    [
        tables.NAME,
        tables.Column(
            "Age",
            type="date",
            description="CreationTimestamp is a timestamp representing the server time when this object "
            "was created.",
        ),
    ],
    _age_cells,
)
"""kube-apiserver's Table for a custom resource without printer columns: NAME, then AGE."""

AGE_COLUMN = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


def printer(columns: list[Obj] | None) -> tables.Printer:
    """The Table printer of a version's ``additionalPrinterColumns`` (NAME first; AGE when none)."""
    engine = _engine()
    if engine is None:
        return DEFAULT_PRINTER
    found: tables.Printer = engine.printer_for_columns(list(columns or [AGE_COLUMN]))
    return found
