"""Cluster addons: optional components the cluster runs in process (DNS, ...)."""
