//! The one error type of this crate.

/// Why an instance list could not be read or rendered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A line is not `ROUTING_ID=HOST:PORT [admin=PORT]`.
    #[error("line {line}: expected `ROUTING_ID=HOST:PORT [admin=PORT]`, got {got:?}")]
    Syntax {
        /// The line number in the instance list, from 1.
        line: usize,
        /// The offending text.
        got: String,
    },
    /// The routing id is not exactly 6 hex digits (3 bytes).
    #[error("line {line}: routing id {got:?} is not 6 hex digits")]
    RoutingId {
        /// The line number in the instance list, from 1.
        line: usize,
        /// The offending text.
        got: String,
    },
    /// The host is neither an IP address nor a DNS name.
    #[error("line {line}: host {got:?} is not an IP address or a DNS name")]
    Host {
        /// The line number in the instance list, from 1.
        line: usize,
        /// The offending text.
        got: String,
    },
    /// A port is missing, zero, or not a number below 65536.
    #[error("line {line}: port {got:?} is not a number from 1 to 65535")]
    Port {
        /// The line number in the instance list, from 1.
        line: usize,
        /// The offending text.
        got: String,
    },
    /// An option after the address is not known.
    #[error("line {line}: unknown option {got:?} (known: admin=PORT)")]
    Option {
        /// The line number in the instance list, from 1.
        line: usize,
        /// The offending text.
        got: String,
    },
    /// Two instances claim the same routing id.
    #[error(
        "line {line}: routing id {routing_id} already belongs to the instance on line {first}"
    )]
    DuplicateRoutingId {
        /// The line of the second claim.
        line: usize,
        /// The line of the first claim.
        first: usize,
        /// The routing id both claim.
        routing_id: String,
    },
    /// Two routing ids point at the same relay address; one instance owns one routing id.
    #[error("line {line}: {address} already serves the routing id on line {first}")]
    DuplicateAddress {
        /// The line of the second claim.
        line: usize,
        /// The line of the first claim.
        first: usize,
        /// The address both name.
        address: String,
    },
    /// Two instances' hosts name the same per-pod Service (Kubernetes output): one Service
    /// selects one pod, which owns one routing id, so one of the two could never be reached.
    #[error(
        "instances with routing ids {first} and {second} both name the per-pod Service {service}"
    )]
    DuplicateService {
        /// The Service name (the lower-cased host).
        service: String,
        /// The routing id of the first instance naming it.
        first: String,
        /// The routing id of the second.
        second: String,
    },
    /// The list names no instance.
    #[error("no instances given")]
    Empty,
    /// A free-form setting would break out of the generated configuration.
    #[error("{setting} {got:?} contains characters that are not allowed here")]
    UnsafeSetting {
        /// The setting's name.
        setting: &'static str,
        /// The value given.
        got: String,
    },
}
