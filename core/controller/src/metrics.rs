//! What the controller measures as it runs (the REST calls, database commits, round trips to
//! satellites); what it holds (nodes, resources, pools, DRBD states) is read at each scrape by
//! `rest::metrics`.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use strata_net::metrics::{latency_histogram, HttpMetrics};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeLabel {
    pub node: String,
}

pub struct ControllerMetrics {
    pub http: Arc<HttpMetrics>,
    /// Time each database commit took.
    pub commits: Histogram,
    /// Time each hello and report poll of a satellite took, there and back.
    pub round_trips: Family<NodeLabel, Histogram, fn() -> Histogram>,
    /// Scrapes of `/metrics` served.
    pub scrapes: AtomicU64,
}

impl Default for ControllerMetrics {
    fn default() -> Self {
        ControllerMetrics {
            http: Arc::new(HttpMetrics::default()),
            commits: latency_histogram(),
            round_trips: Family::new_with_constructor(latency_histogram),
            scrapes: AtomicU64::new(0),
        }
    }
}

impl ControllerMetrics {
    pub fn commit_took(&self, took: Duration) {
        self.commits.observe(took.as_secs_f64());
    }

    pub fn round_trip(&self, node: &str, took: Duration) {
        self.round_trips
            .get_or_create(&NodeLabel {
                node: node.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// Adds the measured metrics to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        self.http.register(registry);
        registry.register_with_unit(
            "database_commit_duration",
            "Time taken by each commit of the controller's database",
            Unit::Seconds,
            self.commits.clone(),
        );
        registry.register_with_unit(
            "satellite_round_trip",
            "Time taken by each hello and report poll of a satellite, there and back",
            Unit::Seconds,
            self.round_trips.clone(),
        );
    }
}
