"""How components talk to the apiserver: one ``Client`` interface, in process (``LocalClient``) or over
HTTP (``HttpClient``), and the controller machinery on top of it: informers (``informer.py``,
``reflector.py``, ``cache.py``) and the work queue (``workqueue.py``). Components import this package,
never the store."""
