"""Prometheus metrics of the apiserver (``GET /metrics``), with the names kube-apiserver uses where one
exists, so existing dashboards and queries read them.

Each app has its own registry (several clusters may live in one test process). The request middleware
counts every request by verb, resource and code and times it; store figures are read at scrape time.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from kbox.api import requestinfo
from kbox.store.interface import Store

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiMetrics:
    def __init__(self, store: Store) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "apiserver_request_total",
            "Requests by verb, resource and HTTP code.",
            ["verb", "group", "resource", "subresource", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "apiserver_request_duration_seconds",
            "Request latency by verb and resource (watches: time to first byte).",
            ["verb", "group", "resource", "subresource"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.watchers = Gauge(
            "apiserver_longrunning_requests",
            "Open watch requests by resource.",
            ["verb", "group", "resource"],
            registry=self.registry,
        )
        self.registry.register(_StoreCollector(store))

    def middleware(self) -> Any:
        # Label lookups are cached per label tuple: prometheus_client's labels() is costly per request.
        counters: dict[tuple[str, ...], Any] = {}
        histograms: dict[tuple[str, ...], Any] = {}

        @web.middleware
        async def measure(request: web.Request, handler: Handler) -> web.StreamResponse:
            labels = _labels(request)
            start = time.perf_counter()
            watching = labels[0] == "watch"
            if watching:
                self.watchers.labels(*labels[:3]).inc()
            code = 500
            try:
                response = await handler(request)
                code = response.status
                return response
            finally:
                if watching:
                    self.watchers.labels(*labels[:3]).dec()
                key = (*labels, str(code))
                counter = counters.get(key)
                if counter is None:
                    counter = counters[key] = self.requests.labels(*key)
                counter.inc()
                histogram = histograms.get(labels)
                if histogram is None:
                    histogram = histograms[labels] = self.latency.labels(*labels)
                histogram.observe(time.perf_counter() - start)

        return measure

    async def serve(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE})


def _labels(request: web.Request) -> tuple[str, str, str, str]:
    """verb, group, resource, subresource; non-resource paths are verb GET with the path as resource."""
    path = request.path
    if path.startswith(("/api/", "/apis/")):
        parts = [p for p in path.split("/") if p]
        is_discovery = (parts[0] == "api" and len(parts) <= 2) or (parts[0] == "apis" and len(parts) <= 3)
        if not is_discovery:
            try:
                info = requestinfo.parse(
                    request.method, path, watch=request.query.get("watch") in ("1", "true")
                )
            except Exception:
                return (request.method.lower(), "", "<invalid>", "")
            return (info.verb, info.group, info.resource, info.subresource or "")
    return (request.method.lower(), "", path if len(path) < 64 else "<long>", "")


class _StoreCollector(Collector):
    """Store figures read at scrape time."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterable[Any]:
        revision = GaugeMetricFamily("kbox_store_revision", "Newest committed revision of the store.")
        revision.add_metric([], self.store.revision)
        yield revision
        compacted = GaugeMetricFamily("kbox_store_compact_revision", "History at or below this is compacted.")
        compacted.add_metric([], self.store.compact_revision)
        yield compacted
        commits = getattr(self.store, "batches", None)
        if commits is not None:
            family = CounterMetricFamily("kbox_store_commits", "Transactions committed (group commit).")
            family.add_metric([], commits)
            yield family
        watchers = getattr(self.store, "watcher_count", None)
        if watchers is not None:
            gauge = GaugeMetricFamily("kbox_store_watchers", "Open watches on the store.")
            gauge.add_metric([], watchers)
            yield gauge
