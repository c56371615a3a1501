"""The apiserver: the Kubernetes REST API over the store (aiohttp), and the pipeline it shares with the
in-process client (authentication, admission, validation, store)."""
