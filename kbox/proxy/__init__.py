"""kube-proxy: Service addresses relayed to ready endpoints in userspace (see :mod:`kbox.proxy.proxier`)."""

from kbox.proxy.proxier import KubeProxy, ProxySettings

__all__ = ["KubeProxy", "ProxySettings"]
