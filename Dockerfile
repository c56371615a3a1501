# kbox in a container: the whole cluster process, talking to the host's Docker engine through its socket.
#
#   docker build -t kbox .
#   docker run --rm -v /var/run/docker.sock:/var/run/docker.sock -v kbox-state:/root/.kbox kbox
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
# Until `kbox start --foreground` exists, the image runs the store's smoke demo.
CMD ["kbox", "demo"]
