"""The kubectl-like commands built into ``kbox`` (``get``, ``describe``, ``apply``, ``logs``, ...).

They talk to a running profile's apiserver over HTTPS like any other client; ``session`` holds what they
share: connecting to the profile, discovery and resource-name resolution, and one-line errors.
"""
