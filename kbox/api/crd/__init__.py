"""CustomResourceDefinitions (``apiextensions.k8s.io/v1``) served at run time.

- :mod:`.definition` declares the CustomResourceDefinition type itself (its strategy, defaults and
  the finalizer added on delete);
- :mod:`.validation` checks a CRD's spec as kube-apiextensions-apiserver does;
- :mod:`.custom` turns one CRD into the ``ResourceDef`` entries of its served versions (strategy, status
  and scale subresources, printer, OpenAPI schema);
- :mod:`.schema` is the seam to the structural-schema engine (:mod:`kbox.api.structural`);
- :mod:`.scale` serves ``<plural>/scale`` from the CRD's replicas paths;
- :mod:`.registrar` keeps the catalog in step with the stored CRDs: names, the NamesAccepted,
  Established and Terminating conditions, and the deletion of every object of a deleted CRD.
"""
