"""One module per API group: the resource declarations (kind, scope, names, strategy) the apiserver serves."""
