"""Structural schemas of CustomResourceDefinitions: pruning, defaulting, validation, printer columns.

The CRD serving code compiles one :class:`Schema` per CRD version and runs every custom object
through it (see :mod:`.schema` for the order); :func:`printer_for_columns` builds the version's Table
printer from its ``additionalPrinterColumns``. Behaviour and wording follow kube-apiserver v1.32
(apiextensions-apiserver and kube-openapi); where kbox differs, the module that does it says so.
"""

from __future__ import annotations

from kbox.api.structural.columns import printer_for_columns
from kbox.api.structural.schema import CEL_WARNING, Schema

__all__ = ["CEL_WARNING", "Schema", "printer_for_columns"]
