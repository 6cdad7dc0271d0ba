//! What the satellite measures: its agent API's calls (as the controller makes them), each
//! reconcile pass, and every run of a storage or DRBD tool (time taken, failures). Served as
//! Prometheus metrics on a port of their own (`--metrics-port`, `[metrics] port`), in plain
//! HTTP: the agent port takes the controller's certificate only.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use strata_exec::{Cmd, CommandRunner, ExecError, Output};
use strata_net::metrics::{latency_histogram, HttpMetrics};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ToolLabel {
    pub tool: String,
}

pub struct SatelliteMetrics {
    pub http: Arc<HttpMetrics>,
    /// Time each reconcile pass took (a configuration applied, or the record converged).
    pub reconciles: Histogram,
    /// Time each run of a tool took, by program.
    pub tool_runs: Family<ToolLabel, Histogram, fn() -> Histogram>,
    /// Runs of a tool that failed (could not start, timed out or exited non-zero).
    pub tool_failures: Family<ToolLabel, Counter>,
}

impl Default for SatelliteMetrics {
    fn default() -> Self {
        SatelliteMetrics {
            http: Arc::new(HttpMetrics::default()),
            reconciles: latency_histogram(),
            tool_runs: Family::new_with_constructor(latency_histogram),
            tool_failures: Family::default(),
        }
    }
}

impl SatelliteMetrics {
    pub fn reconciled(&self, took: Duration) {
        self.reconciles.observe(took.as_secs_f64());
    }

    pub fn registry(&self) -> Registry {
        let mut registry = Registry::with_prefix("strata_satellite");
        self.http.register(&mut registry);
        registry.register_with_unit(
            "reconcile_duration",
            "Time taken by each reconcile pass",
            Unit::Seconds,
            self.reconciles.clone(),
        );
        registry.register_with_unit(
            "tool_run_duration",
            "Time taken by each run of a storage or DRBD tool, by program",
            Unit::Seconds,
            self.tool_runs.clone(),
        );
        registry.register(
            "tool_failures",
            "Runs of a tool that failed to start, timed out or exited with an error",
            self.tool_failures.clone(),
        );
        registry
    }

    /// The `/metrics` server, until `shutdown`.
    pub async fn serve(
        self: Arc<Self>,
        listen: SocketAddr,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen for metrics on {listen}: {e}"))?;
        tracing::info!("metrics on http://{listen}/metrics");
        let app = Router::new().route(
            "/metrics",
            get(move |headers: HeaderMap| {
                let m = self.clone();
                async move {
                    strata_net::metrics::exposition(
                        &m.registry(),
                        headers.get(axum::http::header::ACCEPT),
                    )
                }
            }),
        );
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await?;
        Ok(())
    }
}

/// A command runner that times every run and counts failures.
pub struct MeasuredRunner {
    pub inner: Arc<dyn CommandRunner>,
    pub metrics: Arc<SatelliteMetrics>,
}

impl CommandRunner for MeasuredRunner {
    fn run_any(&self, cmd: &Cmd) -> Result<Output, ExecError> {
        let label = ToolLabel {
            tool: cmd
                .program
                .rsplit('/')
                .next()
                .unwrap_or(&cmd.program)
                .to_string(),
        };
        let started = Instant::now();
        let out = self.inner.run_any(cmd);
        self.metrics
            .tool_runs
            .get_or_create(&label)
            .observe(started.elapsed().as_secs_f64());
        if !out.as_ref().is_ok_and(|o| o.status == 0) {
            self.metrics.tool_failures.get_or_create(&label).inc();
        }
        out
    }

    fn available(&self, program: &str) -> bool {
        self.inner.available(program)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_exec::RealRunner;

    #[test]
    fn tool_runs_are_timed_and_failures_counted() {
        let metrics = Arc::new(SatelliteMetrics::default());
        let runner = MeasuredRunner {
            inner: Arc::new(RealRunner),
            metrics: metrics.clone(),
        };
        assert!(runner.run(&Cmd::new("true")).is_ok());
        assert!(runner.run(&Cmd::new("false")).is_err());
        assert!(runner.run(&Cmd::new("false")).is_err());
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &metrics.registry())
            .unwrap();
        assert!(
            text.contains("strata_satellite_tool_run_duration_seconds_count{tool=\"true\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("strata_satellite_tool_failures_total{tool=\"false\"} 2"),
            "{text}"
        );
        assert!(
            !text.contains("strata_satellite_tool_failures_total{tool=\"true\"}"),
            "{text}"
        );
    }
}
