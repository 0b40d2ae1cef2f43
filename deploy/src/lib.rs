//! Deployment support for the caBLE tunnel relay: turns a list of relay instances
//! (routing id → address) into load-balancer configuration, so that operators never edit
//! routing maps by hand.
//!
//! One relay instance owns one routing id. A balancer spreads `/cable/new/*` over every
//! ready instance and sends `/cable/connect/<routing id>/*` to the owner; that map is what
//! this crate generates, for nginx ([`nginx::render`]), HAProxy ([`haproxy::render_map`],
//! [`haproxy::render_config`]) and Kubernetes (per-pod Services,
//! [`ingress::render_pod_services`], an Ingress, [`ingress::render`], and Gateway API
//! HTTPRoutes, [`gateway::render`]). The static
//! parts (nginx `location` blocks, TLS, `global`/`defaults`) live as files under `deploy/`.
//!
//! Or, for relays in a StatefulSet whose routing ids carry the pod ordinal, routing by rule
//! ([`by_ordinal`]): the balancer derives the owner's DNS name from the routing id, so its
//! configuration is generated once and the relays scale without it.
//!
//! What it deliberately does not do: discover instances itself (the input is an explicit
//! list, or DNS at the balancer), reload the balancer, or touch the relay itself.
//!
//! Central types: [`Instances`] (a validated list of [`Instance`]s), [`RoutingId`], and
//! [`ConfigError`]. The binary `cable-lbconf` is a thin command-line front end.

pub mod by_ordinal;
mod error;
pub mod gateway;
pub mod haproxy;
pub mod ingress;
mod instance;
pub mod nginx;
mod routing_id;

pub use error::ConfigError;
pub use instance::{Host, Instance, Instances};
pub use routing_id::RoutingId;
