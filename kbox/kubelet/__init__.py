"""The node agent: registers its node, keeps it fresh, and makes the container runtime match the pods
bound to it."""
