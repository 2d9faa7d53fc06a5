"""OpenTelemetry metrics served for Prometheus on a metrics port; set up once per process."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from opentelemetry import metrics
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server

METRICS_PATH = "/metrics"
# Histogram buckets (seconds) for calls that take milliseconds normally and seconds when a
# dependency struggles: fine enough for a p99 alert, few enough series to stay cheap.
LATENCY_BUCKETS_SECONDS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
)
# End-to-end freshness spans queueing too: an outage's backlog drains over minutes.
FRESHNESS_BUCKETS_SECONDS = (*LATENCY_BUCKETS_SECONDS[3:], 300, 900, 3600)


def seconds_histogram(
    meter: metrics.Meter,
    name: str,
    description: str,
    buckets: Sequence[float] = LATENCY_BUCKETS_SECONDS,
) -> metrics.Histogram:
    """A duration histogram in seconds (`<name>_seconds` in Prometheus) with these buckets."""
    return meter.create_histogram(
        name, unit="s", description=description, explicit_bucket_boundaries_advisory=buckets
    )


@dataclass(frozen=True, slots=True)
class MetricsAddress:
    """Where a process serves `/metrics`: its service's host, and a port (0: any free one)."""

    host: str
    port: int


class MetricsEndpoint:
    """The running `/metrics` HTTP server (a daemon thread of prometheus-client)."""

    def __init__(self, server: WSGIServer, provider: MeterProvider) -> None:
        self._server = server
        self._provider = provider

    @property
    def url(self) -> str:
        """The scrape URL on the address actually bound (port 0 becomes a real port)."""
        host, port = self._server.server_address[:2]
        host = str(host)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}{METRICS_PATH}"

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._provider.shutdown()


def serve_metrics(service_name: str, address: MetricsAddress) -> MetricsEndpoint:
    """Install the global meter provider and serve its readings on `address`.

    Instruments are created from `metrics.get_meter(__name__)` anywhere, before or after this
    call (the API proxies them); they read as no-ops in processes that never call it.

    Raises:
        OSError: The port cannot be bound (taken, or a host that is not local).
    """
    # A registry of its own: the readings of this process only, nothing process-global
    # that a second call (a test) would register twice.
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    # Without scope labels: the metric names already say where they come from.
    reader = PrometheusMetricReader(registry=registry, scope_info_enabled=False)
    provider = MeterProvider(
        metric_readers=[reader], resource=Resource.create({"service.name": service_name})
    )
    server, _thread = start_http_server(address.port, addr=address.host, registry=registry)
    metrics.set_meter_provider(provider)
    return MetricsEndpoint(server, provider)
