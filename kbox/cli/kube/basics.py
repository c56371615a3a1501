"""kubectl's ``describe`` layouts for ConfigMaps, Secrets and Namespaces.

ConfigMaps show each key with its text; Secrets show only sizes (the one exception, as in kubectl: the
token of a service-account token Secret); Namespaces show their phase and conditions. kubectl lists
keys in Go's map order, which is random; here they are sorted.
"""

from __future__ import annotations

import base64
import binascii
import datetime
from typing import Any

from kbox.cli.kube.describe import Writer, rfc1123z, write_events, write_metadata
from kbox.cli.kube.session import Api

Obj = dict[str, Any]


async def describe_config_map(api: Api, obj: Obj, events: list[Obj] | None, now: datetime.datetime) -> str:
    w = Writer()
    metadata = obj.get("metadata") or {}
    write_metadata(w, metadata)
    w.write(0, "\nData\n====\n")
    data = obj.get("data") or {}
    for key in sorted(data):
        w.write(0, f"{key}:\n----\n")
        w.write(0, f"{data[key]}\n")
        w.write(0, "\n")
    w.write(0, "\nBinaryData\n====\n")
    binary = obj.get("binaryData") or {}
    for key in sorted(binary):
        w.write(0, f"{key}: {len(_decoded(binary[key]))} bytes\n")
    w.write(0, "\n")
    write_events(w, events, now)
    return w.text()


def _decoded(value: Any) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        return str(value).encode()


async def describe_secret(api: Api, obj: Obj, events: list[Obj] | None, now: datetime.datetime) -> str:
    w = Writer()
    metadata = obj.get("metadata") or {}
    kind = obj.get("type", "")
    write_metadata(w, metadata)
    w.write(0, f"\nType:\t{kind}\n")
    w.write(0, "\nData\n====\n")
    data = obj.get("data") or {}
    for key in sorted(data):
        value = _decoded(data[key])
        if key == "token" and kind == "kubernetes.io/service-account-token":
            w.write(0, f"{key}:\t{value.decode(errors='replace')}\n")
        else:
            w.write(0, f"{key}:\t{len(value)} bytes\n")
    return w.text()  # kubectl shows no events for Secrets


async def describe_namespace(api: Api, obj: Obj, events: list[Obj] | None, now: datetime.datetime) -> str:
    w = Writer()
    metadata = obj.get("metadata") or {}
    status = obj.get("status") or {}
    write_metadata(w, metadata, namespace=False)
    w.write(0, f"Status:\t{status.get('phase', '')}\n")
    conditions = status.get("conditions") or []
    if conditions:
        w.write(0, "Conditions:\n")
        w.write(1, "Type\tStatus\tLastTransitionTime\tReason\tMessage\n")
        w.write(1, "----\t------\t------------------\t------\t-------\n")
        for c in conditions:
            w.write(
                1,
                f"{c.get('type', '')}\t{c.get('status', '')}\t{rfc1123z(c.get('lastTransitionTime'))}\t"
                f"{c.get('reason', '')}\t{c.get('message', '')}\n",
            )
    # Resource quotas and limit ranges: kbox serves neither, and kubectl leaves both out then.
    return w.text()  # kubectl shows no events for Namespaces
