"""The patch engines of the API server, one module per patch ``Content-Type``.

- ``merge_patch``: ``application/merge-patch+json`` (RFC 7386 JSON merge patch);
- ``json_patch``: ``application/json-patch+json`` (RFC 6902, through the ``jsonpatch`` library);
- ``strategic``: ``application/strategic-merge-patch+json``, driven by the merge keys and strategies of
  the built-in schemas (``kbox.api.schemas``); custom resources answer 415 as kube-apiserver does;
- ``apply``: ``application/apply-patch+yaml`` (server-side apply), with field ownership recorded in
  ``metadata.managedFields``, and ``record_update`` for the ownership of ordinary writes.

Each engine takes plain dicts, never mutates its inputs, and reports a bad patch as the ``StatusError``
kube-apiserver would answer. Callers import the modules; nothing is re-exported here.
"""
