"""The controllers of the controller-manager, one module per kind owned (``replicaset.py``,
``deployment.py``, ``endpoints.py``, ...), all on the loop in ``base.py``: shared informers feed a work
queue of keys, and workers run a level-triggered ``sync(key)`` that reads the cache, never the event.
Controllers talk to the cluster only through ``kbox.client``, and never import each other."""
