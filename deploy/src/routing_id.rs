//! The routing id is the protocol core's own type, so the balancer configuration and the relay
//! cannot disagree about what one is. Configuration files key on its lower-case hex.

pub use cable_proto::ids::RoutingId;

/// Lower-case hex, the form used as a map key: the balancers lower-case the path's copy
/// before looking it up, so either case in a request routes.
pub(crate) fn map_key(id: &RoutingId) -> String {
    id.to_hex().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_either_case() {
        let a = RoutingId::from_hex("0a1B2c").unwrap();
        assert_eq!(a.as_bytes(), &[0x0a, 0x1b, 0x2c]);
        assert_eq!(map_key(&a), "0a1b2c");
        assert_eq!(a.to_hex(), "0A1B2C");
    }

    #[test]
    fn rejects_bad_hex() {
        for bad in ["", "0a1b2", "0a1b2c3", "0a1b2g", "+a1b2c", "0a 1b2", "ÿÿÿ"] {
            assert!(RoutingId::from_hex(bad).is_err(), "{bad:?}");
        }
    }
}
