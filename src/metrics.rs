//! Prometheus metrics of one instance, served at `/metrics`: cache hits and misses per layer,
//! loads from the store, evaluations, invalidations, change events published, received and
//! dropped, pub/sub reconnects, password verifications, propagation lag and check latency.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub cache_hits: PerLayer,
    pub cache_misses: PerLayer,
    /// GraphQL requests by how their query was validated: in full; or, for a text and
    /// variables' shape seen passing before, only by the limits and structural rules
    /// (remembered), or not at all when the text is a prepared `check` answered without the
    /// executor (prepared).
    pub validations_full: IntCounter,
    pub validations_remembered: IntCounter,
    pub validations_prepared: IntCounter,
    pub cache_bypassed: IntCounter,
    pub store_loads: IntCounter,
    /// Nodes the GraphQL resolvers asked for (a node, or a node's children), and the store
    /// queries that answered them: siblings at one level of a query share one batch.
    pub node_lookups: IntCounter,
    pub node_batches: IntCounter,
    pub invalidations: IntCounter,
    pub evaluations: IntCounter,
    pub events_published: IntCounter,
    pub events_received: IntCounter,
    pub events_dropped: IntCounter,
    pub pubsub_reconnects: IntCounter,
    pub l2_errors: IntCounter,
    /// Passwords checked against a stored (or the dummy) argon2 hash: sign-ins and changes.
    pub password_verifications: IntCounter,
    pub propagation_lag: Histogram,
    pub check_latency: Histogram,
}

fn counter(registry: &Registry, name: &str, help: &str) -> Result<IntCounter, prometheus::Error> {
    let c = IntCounter::with_opts(Opts::new(name, help))?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

/// One counter per cache layer, resolved once (a labelled lookup per request costs a hash and
/// a shared lock).
pub struct PerLayer {
    pub l1: IntCounter,
    pub l2: IntCounter,
    pub node: IntCounter,
    pub session: IntCounter,
    pub api_key: IntCounter,
}

fn per_layer(registry: &Registry, name: &str, help: &str) -> Result<PerLayer, prometheus::Error> {
    let c = IntCounterVec::new(Opts::new(name, help), &["layer"])?;
    registry.register(Box::new(c.clone()))?;
    let layer = |l: &str| c.get_metric_with_label_values(&[l]);
    Ok(PerLayer {
        l1: layer("l1")?,
        l2: layer("l2")?,
        node: layer("node")?,
        session: layer("session")?,
        api_key: layer("api_key")?,
    })
}

/// One counter per value of the label `mode`.
fn per_mode<const N: usize>(
    registry: &Registry,
    name: &str,
    help: &str,
    modes: [&str; N],
) -> Result<[IntCounter; N], prometheus::Error> {
    let c = IntCounterVec::new(Opts::new(name, help), &["mode"])?;
    registry.register(Box::new(c.clone()))?;
    let mut counters = Vec::with_capacity(N);
    for mode in modes {
        counters.push(c.get_metric_with_label_values(&[mode])?);
    }
    counters
        .try_into()
        .map_err(|_| prometheus::Error::Msg(format!("{name}: a counter per mode")))
}

fn seconds(registry: &Registry, name: &str, help: &str) -> Result<Histogram, prometheus::Error> {
    let buckets = vec![
        0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
        0.5, 1.0, 2.5,
    ];
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))?;
    registry.register(Box::new(h.clone()))?;
    Ok(h)
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let r = Registry::new_custom(Some("iam".to_owned()), None)?;
        let [
            validations_full,
            validations_remembered,
            validations_prepared,
        ] = per_mode(
            &r,
            "graphql_validations_total",
            "GraphQL requests by validation: full; remembered for a text and variables' shape that passed before; none for such a prepared check, answered without the executor",
            ["full", "remembered", "prepared"],
        )?;
        Ok(Self {
            validations_full,
            validations_remembered,
            validations_prepared,
            cache_hits: per_layer(
                &r,
                "cache_hits_total",
                "decision facts served from a cache layer",
            )?,
            cache_misses: per_layer(
                &r,
                "cache_misses_total",
                "lookups a cache layer could not answer",
            )?,
            cache_bypassed: counter(
                &r,
                "cache_bypassed_total",
                "lookups answered from the store because the caches were not trusted",
            )?,
            store_loads: counter(&r, "store_loads_total", "facts read from the database")?,
            node_lookups: counter(
                &r,
                "node_lookups_total",
                "nodes (or nodes' children) GraphQL resolvers asked the store for",
            )?,
            node_batches: counter(
                &r,
                "node_batches_total",
                "store queries that answered those lookups, a batch each",
            )?,
            invalidations: counter(
                &r,
                "cache_invalidations_total",
                "cached facts found stale by their epochs",
            )?,
            evaluations: counter(&r, "evaluations_total", "decisions computed by the engine")?,
            events_published: counter(
                &r,
                "events_published_total",
                "change events published by this instance",
            )?,
            events_received: counter(
                &r,
                "events_received_total",
                "change events heard from other instances",
            )?,
            events_dropped: counter(
                &r,
                "events_dropped_total",
                "change events that could not be queued for Redis",
            )?,
            pubsub_reconnects: counter(
                &r,
                "pubsub_reconnects_total",
                "Redis pub/sub (re)connections",
            )?,
            l2_errors: counter(
                &r,
                "l2_errors_total",
                "Redis cache reads or writes that failed or timed out",
            )?,
            password_verifications: counter(
                &r,
                "password_verifications_total",
                "passwords verified against an argon2 hash (sign-ins, password changes)",
            )?,
            propagation_lag: seconds(
                &r,
                "propagation_lag_seconds",
                "time from commit on another instance to its event here",
            )?,
            check_latency: seconds(
                &r,
                "check_latency_seconds",
                "time to answer one check resolver",
            )?,
            registry: r,
        })
    }

    /// The metrics in Prometheus' text format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .is_err()
        {
            return String::new();
        }
        String::from_utf8(out).unwrap_or_default()
    }
}
