"""Deploy a small web app (a Deployment and a Service in front of it) with the official client."""

from __future__ import annotations

from kubernetes import client


def deploy(api: client.ApiClient, namespace: str, name: str = "web", replicas: int = 2) -> None:
    """Create Deployment ``name`` running ``replicas`` nginx pods, and Service ``name`` on port 80."""
    labels = {"app": name}
    deployment = client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    containers=[
                        client.V1Container(
                            name="web",
                            image="nginx:1.27",
                            ports=[client.V1ContainerPort(container_port=80)],
                        )
                    ]
                ),
            ),
        ),
    )
    service = client.V1Service(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1ServiceSpec(selector=labels, ports=[client.V1ServicePort(port=80, target_port=80)]),
    )
    client.AppsV1Api(api).create_namespaced_deployment(namespace, deployment)
    client.CoreV1Api(api).create_namespaced_service(namespace, service)
