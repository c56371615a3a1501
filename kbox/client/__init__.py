"""How components talk to the apiserver: one ``Client`` interface, in process (``LocalClient``) or over
HTTP (``HttpClient``). Components import this package, never the store."""
