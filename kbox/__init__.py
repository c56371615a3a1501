"""kbox: Kubernetes in one asyncio Python process."""

__version__ = "0.1.0"
