"""The Dashboard addon: the cluster in a browser, served by the kbox process (see :mod:`.server`)."""

from kbox.addons.dashboard.server import COMPONENT, NAMESPACE, RECORD, DashboardServer, DashboardSettings

__all__ = ["COMPONENT", "NAMESPACE", "RECORD", "DashboardServer", "DashboardSettings"]
