"""fixture_demo.deploy against a whole kbox cluster: the pods run and the Service finds them."""

from collections.abc import Iterator

import pytest
from fixture_demo import deploy
from kubernetes import client, config


@pytest.fixture
def api(kbox_cluster) -> Iterator[client.ApiClient]:
    """The official client, configured from the kubeconfig of the cluster the kbox plugin started."""
    with config.new_client_from_config(config_file=str(kbox_cluster.kubeconfig_path)) as api_client:
        yield api_client


def test_deploy_runs_pods(kbox_cluster, kbox_namespace, api):
    deploy(api, kbox_namespace, name="web", replicas=2)

    # Wait, by watching, until both replicas are ready, then check the pods themselves.
    kbox_cluster.wait_for(
        "Deployment",
        "web",
        kbox_namespace,
        predicate=lambda d: (d.get("status") or {}).get("readyReplicas") == 2,
        timeout=30,
    )
    core = client.CoreV1Api(api)
    pods = core.list_namespaced_pod(kbox_namespace, label_selector="app=web").items
    assert len(pods) == 2
    for pod in pods:
        kbox_cluster.wait_for("Pod", pod.metadata.name, kbox_namespace, condition="Running", timeout=30)
    pods = core.list_namespaced_pod(kbox_namespace, label_selector="app=web").items
    assert [pod.status.phase for pod in pods] == ["Running", "Running"]
    assert all(pod.spec.node_name in kbox_cluster.node_names for pod in pods)

    service = core.read_namespaced_service("web", kbox_namespace)
    assert service.spec.cluster_ip
    assert service.spec.ports[0].port == 80

    # Endpoints come from kbox's endpoints controller; check them when the object exists.
    pod_ips = {pod.status.pod_ip for pod in pods}
    for endpoints in core.list_namespaced_endpoints(kbox_namespace, field_selector="metadata.name=web").items:
        addresses = [a.ip for subset in endpoints.subsets or [] for a in subset.addresses or []]
        assert set(addresses) <= pod_ips

    # Clean up: deleting the Deployment removes its ReplicaSet and pods (garbage collection); the
    # kbox_namespace fixture then empties and deletes the namespace.
    client.AppsV1Api(api).delete_namespaced_deployment("web", kbox_namespace)
    core.delete_namespaced_service("web", kbox_namespace)
    kbox_cluster.wait_for("Deployment", "web", kbox_namespace, condition="delete", timeout=30)
