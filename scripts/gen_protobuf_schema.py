#!/usr/bin/env python3
"""Generate ``kbox/api/protobuf_schema.py``, the message table behind ``kbox.api.protobuf``.

Usage::

    python scripts/gen_protobuf_schema.py [-o kbox/api/protobuf_schema.py] PATH...

Each PATH is a ``generated.proto`` file of kubernetes/api or kubernetes/apimachinery, or a Go
``types.go`` from the same directory. The ``.proto`` files give the wire facts (message names,
field numbers, scalar/message/map types, repeated). The Go files give what the JSON encoding does
with each field, which the ``.proto`` files do not record: the JSON key (``json:"name"``), whether
it is ``omitempty``, whether the Go field is a pointer, and which embedded structs are inlined
(``Volume`` flattens ``VolumeSource``, ``Probe`` flattens ``ProbeHandler``, the ``*KeySelector``
types flatten ``LocalObjectReference``...). A Go file belongs to the ``.proto`` file in the same
directory; Go fields are matched to proto fields by the number in their ``protobuf:"..."`` tag.

The table kbox uses was produced from tag ``v0.32.4`` of both repositories (the version kbox
serves), with the files laid out as in the repositories, e.g.::

    for p in core/v1 apps/v1 batch/v1 rbac/v1 policy/v1 scheduling/v1 networking/v1 \\
             authorization/v1 authentication/v1; do
      mkdir -p /tmp/k/api/$p
      git -C <kubernetes/api> show v0.32.4:$p/generated.proto > /tmp/k/api/$p/generated.proto
      git -C <kubernetes/api> show v0.32.4:$p/types.go > /tmp/k/api/$p/types.go
    done
    for p in pkg/api/resource pkg/apis/meta/v1 pkg/runtime pkg/util/intstr; do
      mkdir -p /tmp/k/am/$p
      git -C <kubernetes/apimachinery> show v0.32.4:$p/generated.proto > /tmp/k/am/$p/generated.proto
    done
    git -C <kubernetes/apimachinery> show v0.32.4:pkg/apis/meta/v1/types.go \\
        > /tmp/k/am/pkg/apis/meta/v1/types.go
    python scripts/gen_protobuf_schema.py $(find /tmp/k -name generated.proto -o -name types.go)

Only messages reachable from ``KINDS`` (below) are written. Types whose Go JSON encoding is custom
(``Time``, ``Quantity``, ``IntOrString``, ...) are listed in ``SPECIAL``; their tables keep the proto
field names and the decoder converts them. The output holds no upstream text, only the table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field

# (apiVersion, kind) -> proto message (full name). The kinds kubectl v1.32 sends as protobuf.
KINDS: dict[tuple[str, str], str] = {
    ("v1", "Namespace"): "k8s.io.api.core.v1.Namespace",
    ("v1", "ConfigMap"): "k8s.io.api.core.v1.ConfigMap",
    ("v1", "Secret"): "k8s.io.api.core.v1.Secret",
    ("v1", "Service"): "k8s.io.api.core.v1.Service",
    ("v1", "ServiceAccount"): "k8s.io.api.core.v1.ServiceAccount",
    ("v1", "ResourceQuota"): "k8s.io.api.core.v1.ResourceQuota",
    ("apps/v1", "Deployment"): "k8s.io.api.apps.v1.Deployment",
    ("batch/v1", "Job"): "k8s.io.api.batch.v1.Job",
    ("batch/v1", "CronJob"): "k8s.io.api.batch.v1.CronJob",
    ("rbac.authorization.k8s.io/v1", "Role"): "k8s.io.api.rbac.v1.Role",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "k8s.io.api.rbac.v1.RoleBinding",
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): "k8s.io.api.rbac.v1.ClusterRole",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "k8s.io.api.rbac.v1.ClusterRoleBinding",
    ("policy/v1", "PodDisruptionBudget"): "k8s.io.api.policy.v1.PodDisruptionBudget",
    ("policy/v1", "Eviction"): "k8s.io.api.policy.v1.Eviction",
    ("scheduling.k8s.io/v1", "PriorityClass"): "k8s.io.api.scheduling.v1.PriorityClass",
    ("networking.k8s.io/v1", "Ingress"): "k8s.io.api.networking.v1.Ingress",
    (
        "authorization.k8s.io/v1",
        "SelfSubjectAccessReview",
    ): "k8s.io.api.authorization.v1.SelfSubjectAccessReview",
    (
        "authorization.k8s.io/v1",
        "SelfSubjectRulesReview",
    ): "k8s.io.api.authorization.v1.SelfSubjectRulesReview",
    ("authentication.k8s.io/v1", "TokenRequest"): "k8s.io.api.authentication.v1.TokenRequest",
    ("authentication.k8s.io/v1", "SelfSubjectReview"): "k8s.io.api.authentication.v1.SelfSubjectReview",
}

# Messages whose Go type marshals to JSON through its own code, and how (see kbox/api/protobuf.py).
SPECIAL: dict[str, str] = {
    "k8s.io.apimachinery.pkg.apis.meta.v1.Time": "time",
    "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime": "microtime",
    "k8s.io.apimachinery.pkg.apis.meta.v1.Duration": "duration",
    "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1": "raw",
    "k8s.io.apimachinery.pkg.runtime.RawExtension": "raw",
    "k8s.io.apimachinery.pkg.api.resource.Quantity": "quantity",
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": "intorstring",
}

PREFIXES = (
    "k8s.io.api.",
    "k8s.io.apimachinery.pkg.apis.",
    "k8s.io.apimachinery.pkg.api.",
    "k8s.io.apimachinery.pkg.util.",
    "k8s.io.apimachinery.pkg.",
)
SCALARS = {"string", "bytes", "bool", "int32", "int64", "uint32", "uint64", "double", "float"}
FLAG_NAMES = {1: "REP", 2: "OMIT", 4: "PTR", 8: "INLINE"}


@dataclass
class ProtoField:
    number: int
    name: str
    type: str  # scalar name, message full name, or "map"
    repeated: bool
    value: str | None = None  # map value type (scalar or message full name)


@dataclass
class ProtoMessage:
    name: str  # full name
    directory: str
    fields: list[ProtoField] = field(default_factory=list)


@dataclass
class GoField:
    number: int
    json: str | None  # None: ``json:"-"``
    omitempty: bool
    pointer: bool
    inline: bool


def q(text: str) -> str:
    """A double-quoted Python literal, as ruff format writes it."""
    return json.dumps(text)


def short(name: str) -> str:
    for prefix in PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
_PACKAGE = re.compile(r"^\s*package\s+([\w.]+)\s*;", re.M)
_MESSAGE = re.compile(r"\bmessage\s+(\w+)\s*\{([^{}]*)\}")
_FIELD = re.compile(r"^\s*(optional|repeated|required)\s+([\w.]+)\s+(\w+)\s*=\s*(\d+)\s*(?:\[[^\]]*\])?\s*;")
_MAP = re.compile(r"^\s*map\s*<\s*([\w.]+)\s*,\s*([\w.]+)\s*>\s+(\w+)\s*=\s*(\d+)\s*;")


def parse_proto(path: str) -> list[ProtoMessage]:
    with open(path, encoding="utf-8") as source:
        text = _COMMENT.sub("", source.read())
    package_match = _PACKAGE.search(text)
    if not package_match:
        sys.exit(f"{path}: no package")
    package = package_match.group(1)
    raw: list[tuple[str, list[tuple[str, ...]]]] = []
    for message in _MESSAGE.finditer(text):
        rows: list[tuple[str, ...]] = []
        for line in message.group(2).splitlines():
            if not line.strip() or line.strip().startswith("option "):
                continue
            if m := _FIELD.match(line):
                rows.append(("field", *m.groups()))
            elif m := _MAP.match(line):
                rows.append(("map", *m.groups()))
            else:
                sys.exit(f"{path}: message {message.group(1)}: cannot parse {line.strip()!r}")
        raw.append((message.group(1), rows))
    local = {name for name, _ in raw}

    def resolve(type_name: str) -> str:
        if type_name in SCALARS:
            return type_name
        if type_name.startswith("."):
            return type_name[1:]
        if type_name in local:
            return f"{package}.{type_name}"
        sys.exit(f"{path}: cannot resolve type {type_name}")

    messages = []
    for name, rows in raw:
        msg = ProtoMessage(f"{package}.{name}", os.path.dirname(os.path.abspath(path)))
        for row in rows:
            if row[0] == "field":
                _, label, type_name, field_name, number = row
                msg.fields.append(
                    ProtoField(int(number), field_name, resolve(type_name), label == "repeated")
                )
            else:
                _, key, value, field_name, number = row
                if key != "string":
                    sys.exit(f"{path}: {name}.{field_name}: map key {key} (only string keys are supported)")
                msg.fields.append(ProtoField(int(number), field_name, "map", False, resolve(value)))
        messages.append(msg)
    return messages


_STRUCT = re.compile(r"^type\s+(\w+)\s+struct\s*\{\s*$")
_SLICE_TYPE = re.compile(r"^type\s+(\w+)\s+\[\]\S+\s*$")
_GO_FIELD = re.compile(r"^\s*(?:(\w+)\s+)?(\S+)\s+`([^`]*)`")


def _tag(tags: str, key: str) -> str | None:
    m = re.search(rf'(?:^|\s){key}:"([^"]*)"', tags)
    return m.group(1) if m else None


def parse_go(path: str) -> tuple[dict[str, list[GoField]], set[str]]:
    """Struct name -> fields with a protobuf tag (in declaration order); and named slice types."""
    structs: dict[str, list[GoField]] = {}
    slices: set[str] = set()
    current: str | None = None
    depth = 0
    with open(path, encoding="utf-8") as source:
        lines = source.readlines()
    for line in lines:
        stripped = line.strip()
        if current is None:
            if m := _STRUCT.match(line):
                current, depth = m.group(1), 1
                structs[current] = []
            elif m := _SLICE_TYPE.match(line):
                slices.add(m.group(1))
            continue
        if stripped.startswith("//"):
            continue
        if depth == 1 and (m := _GO_FIELD.match(line)):
            go_name, go_type, tags = m.groups()
            protobuf = _tag(tags, "protobuf")
            if protobuf is not None:
                number = int(protobuf.split(",")[1])
                json_tag = _tag(tags, "json")
                parts = (json_tag or "").split(",")
                embedded = go_name is None
                if parts[0] == "-":
                    json_name: str | None = None
                elif parts[0]:
                    json_name = parts[0]
                elif embedded:
                    json_name = ""
                else:
                    json_name = go_name
                structs[current].append(
                    GoField(
                        number,
                        json_name,
                        "omitempty" in parts[1:],
                        go_type.startswith("*"),
                        embedded and json_name == "",
                    )
                )
        depth += stripped.count("{") - stripped.count("}")
        if depth <= 0:
            current = None
    return structs, slices


def generate(paths: Iterable[str]) -> str:
    messages: dict[str, ProtoMessage] = {}
    go_structs: dict[tuple[str, str], list[GoField]] = {}
    go_slices: set[tuple[str, str]] = set()
    for path in paths:
        directory = os.path.dirname(os.path.abspath(path))
        if path.endswith(".proto"):
            for msg in parse_proto(path):
                messages[msg.name] = msg
        elif path.endswith(".go"):
            structs, slices = parse_go(path)
            for name, go_fields in structs.items():
                go_structs[(directory, name)] = go_fields
            go_slices.update((directory, name) for name in slices)
        else:
            sys.exit(f"{path}: expected a .proto or .go file")

    reachable: list[str] = []
    # The SPECIAL types are always written, reachable or not: they are tiny, and the decoder knows them.
    todo = [*KINDS.values(), *(name for name in SPECIAL if name in messages)]
    while todo:
        name = todo.pop()
        if name in reachable:
            continue
        if name not in messages:
            sys.exit(f"message {name} is referenced but no .proto file given defines it")
        reachable.append(name)
        for f in messages[name].fields:
            for ref in (f.type, f.value):
                if ref and ref not in SCALARS and ref != "map":
                    todo.append(ref)

    special = dict(SPECIAL)
    out_messages: list[str] = []
    for name in sorted(reachable, key=short):
        msg = messages[name]
        simple = name.rsplit(".", 1)[1]
        rows: list[str] = []
        if (msg.directory, simple) in go_slices:
            special[name] = "list"
        if name in special:
            ordered = [(f, GoField(f.number, f.name, False, False, False)) for f in msg.fields]
        else:
            if (msg.directory, simple) not in go_structs:
                sys.exit(f"no Go struct for {name}: pass the types.go next to its generated.proto")
            go_fields = go_structs[(msg.directory, simple)]
            by_number = {f.number: f for f in msg.fields}
            ordered = []
            for go_field in go_fields:
                if go_field.number not in by_number:
                    sys.exit(f"{name}: Go field {go_field.number} is not in the .proto")
                ordered.append((by_number.pop(go_field.number), go_field))
            if by_number:
                sys.exit(f"{name}: proto fields {sorted(by_number)} have no Go field")
        for proto_field, go_field in ordered:
            if go_field.json is None:
                continue  # json:"-": not part of the JSON object
            flags = (
                (1 if proto_field.repeated else 0)
                | (2 if go_field.omitempty else 0)
                | (4 if go_field.pointer else 0)
                | (8 if go_field.inline else 0)
            )
            flag_text = " | ".join(FLAG_NAMES[bit] for bit in (1, 2, 4, 8) if flags & bit) or "0"
            if proto_field.type == "map":
                kind, ref = "map", proto_field.value
            elif proto_field.type in SCALARS:
                kind, ref = proto_field.type, None
            else:
                kind, ref = "message", proto_field.type
            ref_text = "None" if ref is None else q(ref if ref in SCALARS else short(ref))
            rows.append(
                f"        {proto_field.number}: ({q(go_field.json)}, {q(kind)}, {flag_text}, {ref_text}),"
            )
        body = "\n".join(rows)
        out_messages.append(
            f"    {q(short(name))}: {{\n{body}\n    }}," if rows else f"    {q(short(name))}: {{}},"
        )

    kinds = "\n".join(f"    ({q(av)}, {q(kind)}): {q(short(msg))}," for (av, kind), msg in KINDS.items())
    specials = "\n".join(
        f"    {q(short(n))}: {q(how)},"
        for n, how in sorted(special.items(), key=lambda i: short(i[0]))
        if n in reachable
    )
    return f'''"""Kubernetes protobuf message table for :mod:`kbox.api.protobuf`. GENERATED: do not edit.

Written by ``scripts/gen_protobuf_schema.py`` from the ``generated.proto`` and ``types.go`` files of
kubernetes/api and kubernetes/apimachinery (tag v0.32.4).

``KINDS`` maps (apiVersion, kind) to the message of the object. ``MESSAGES`` maps a message name to
its fields, ``number -> (json name, type, flags, ref)``, in Go declaration order (the JSON key
order). ``type`` is a proto scalar, ``"message"`` (ref = message name) or ``"map"`` (string keys;
ref = value scalar or message name). Flags: ``REP`` repeated; ``OMIT`` JSON ``omitempty``; ``PTR``
Go pointer (on the wire only when set); ``INLINE`` embedded struct whose fields join the parent's
JSON object. Messages in ``SPECIAL`` have custom JSON (Time, Quantity, ...); their fields keep the
proto names and the decoder converts them.
"""

from __future__ import annotations

from typing import Final

REP: Final = 1
OMIT: Final = 2
PTR: Final = 4
INLINE: Final = 8

Field = tuple[str, str, int, str | None]

KINDS: Final[dict[tuple[str, str], str]] = {{
{kinds}
}}

SPECIAL: Final[dict[str, str]] = {{
{specials}
}}

MESSAGES: Final[dict[str, dict[int, Field]]] = {{
{chr(10).join(out_messages)}
}}
'''


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("paths", nargs="+", help="generated.proto and types.go files")
    parser.add_argument("-o", "--output", default=os.path.join("kbox", "api", "protobuf_schema.py"))
    args = parser.parse_args()
    text = generate(args.paths)
    with open(args.output, "w", encoding="utf-8") as out:
        out.write(text)
    # Long rows are left to the project's formatter, so the committed file is ruff-clean as written.
    formatted = subprocess.run([sys.executable, "-m", "ruff", "format", "-q", args.output], check=False)
    if formatted.returncode != 0:
        print(f"note: could not run ruff format on {args.output}", file=sys.stderr)
    print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
