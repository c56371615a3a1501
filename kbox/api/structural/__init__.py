"""Structural schemas of CustomResourceDefinitions: pruning, defaulting, validation, printer columns.

The CRD serving code compiles one :class:`Schema` per CRD version (``Schema.from_crd_version``) and
runs every custom object through it:

* ``normalize(obj)`` — prune, default, prune again (kube-apiserver's order on create, update and reads
  from storage); returns the unknown field paths of the request for ``fieldValidation``;
  ``prune(obj)`` and ``default(obj)`` are the two halves;
* ``validate(obj)`` / ``validate_update(obj, old)`` / ``validate_status(obj, old)`` — the 422 field
  errors, worded as kube-apiserver words them (CEL rules included where kbox can evaluate them);
* ``structural_errors()`` / ``schema_errors(path)`` — why the schema is not structural, and every CRD
  schema error (for a 422 on the CRD itself); ``warnings()`` — what kbox does not enforce;
* ``list_types()`` — the merge shape (list and map types) for server-side apply.

:func:`printer_for_columns` builds the version's Table printer from ``additionalPrinterColumns``.
Behaviour and wording follow kube-apiserver v1.32 (apiextensions-apiserver and kube-openapi); where
kbox differs, the module that does it says so.
"""

from __future__ import annotations

from kbox.api.structural.columns import printer_for_columns
from kbox.api.structural.schema import Schema

__all__ = ["Schema", "printer_for_columns"]
