# kbox in a container: the whole cluster process, talking to the host's Docker engine through its socket.
#
#   docker build -t kbox .
#   docker run --rm -p 6443:6443 -v /var/run/docker.sock:/var/run/docker.sock -v kbox-state:/var/lib/kbox kbox
#
# The kubeconfig is written to /var/lib/kbox/kbox/kubeconfig (server https://127.0.0.1:6443).
#
# The base image comes from a registry; machines without one (such as this project's CI) cannot build it.
# Pass --build-arg BASE=<local python image> to use one that is already loaded.
ARG BASE=python:3.11-slim
FROM ${BASE}

WORKDIR /opt/kbox
COPY pyproject.toml README.md ./
COPY kbox ./kbox
RUN pip install --no-cache-dir .
ENV KBOX_HOME=/var/lib/kbox
EXPOSE 6443
# The cluster in the foreground (as `kbox start --foreground`), reachable through the published port.
CMD ["kbox", "serve", "--host", "0.0.0.0", "--port", "6443", "--runtime", "docker"]
