//! `cable inspect`: decode hybrid-transport data into JSON a person or a script can read.
//!
//! Inspection shows the QR secret in full: it exists to debug a code that is already on
//! screen, and a person holding the QR code holds the secret anyway.

use crate::error::CliError;
use cable_proto::{advert, domain, keys, qr::QrCode};
use serde_json::{json, Value};

/// The fields of a `FIDO:/` QR code.
pub fn qr(uri: &str) -> Result<Value, CliError> {
    let code = QrCode::parse(uri.trim()).map_err(CliError::BadQr)?;
    Ok(json!({
        "public_key": hex::encode(keys::compressed(&code.public_key)),
        "secret": hex::encode(code.secret.as_bytes()),
        "known_domains": code.known_domains,
        "timestamp": code.timestamp,
        "state_assisted": code.state_assisted,
        "hint": code.hint.as_str(),
        "tunnel_id": code.secret.tunnel_id().to_hex(),
    }))
}

/// Decrypts a BLE advert (hex service data) with the secret of the QR code it answers.
pub fn advert(uri: &str, advert_hex: &str) -> Result<Value, CliError> {
    let code = QrCode::parse(uri.trim()).map_err(CliError::BadQr)?;
    let bytes = hex::decode(advert_hex.trim()).map_err(CliError::AdvertNotHex)?;
    let decrypted =
        advert::decrypt_advert(&code.secret.eid_key(), &bytes).map_err(CliError::BadAdvert)?;
    let eid = decrypted.eid();
    // decrypt_advert has already refused unknown domain ids, so this only fails if the
    // two disagree; report it as a bad advert rather than panicking.
    let host = domain::host_for_domain_id(eid.domain_id).map_err(CliError::BadAdvert)?;
    let tunnel_id = code.secret.tunnel_id();
    Ok(json!({
        "nonce": hex::encode(eid.nonce),
        "routing_id": eid.routing_id.to_hex(),
        "domain_id": eid.domain_id,
        "domain": host,
        "tunnel_id": tunnel_id.to_hex(),
        "connect_url": domain::connect_url(&host, &eid.routing_id, &tunnel_id),
        "suffix": (!decrypted.suffix.is_empty()).then(|| hex::encode(&decrypted.suffix)),
    }))
}

/// The tunnel-server host name a domain id stands for.
pub fn domain(id: &str) -> Result<String, CliError> {
    let id: u16 = id
        .trim()
        .parse()
        .map_err(|_| CliError::DomainIdNotANumber {
            input: id.to_owned(),
        })?;
    domain::host_for_domain_id(id).map_err(CliError::BadDomain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vectors() -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/vectors/hybrid.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn qr_vector_decodes_to_its_fields() {
        let v = vectors();
        let t = &v["transcripts"]["qr_knpsk0"];
        let out = qr(t["qr_uri"].as_str().unwrap()).unwrap();
        assert_eq!(out["public_key"], t["qr_public_key_compressed"]);
        assert_eq!(out["secret"], t["qr_secret"]);
        assert_eq!(out["known_domains"], 2);
        assert_eq!(out["timestamp"], 1_700_000_000u64);
        assert_eq!(out["state_assisted"], true);
        assert_eq!(out["hint"], "ga");
        assert_eq!(out["tunnel_id"], t["tunnel_id"]);
    }

    #[test]
    fn advert_vector_decrypts() {
        let v = vectors();
        let t = &v["transcripts"]["qr_knpsk0"];
        let out = advert(t["qr_uri"].as_str().unwrap(), t["advert"].as_str().unwrap()).unwrap();
        assert_eq!(out["nonce"], t["eid_nonce"]);
        assert_eq!(out["routing_id"], "010203");
        assert_eq!(out["domain"], "cable.ua5v.com");
        assert_eq!(out["connect_url"], t["connect_url"]);
        assert_eq!(out["suffix"], Value::Null);
    }

    #[test]
    fn advert_suffix_is_reported() {
        let v = vectors();
        let t = &v["transcripts"]["qr_knpsk0"];
        let with_suffix = format!("{}a10119", t["advert"].as_str().unwrap());
        let out = advert(t["qr_uri"].as_str().unwrap(), &with_suffix).unwrap();
        assert_eq!(out["suffix"], "a10119");
    }

    #[test]
    fn domains_follow_the_vectors() {
        for case in vectors()["tunnel_domains"].as_array().unwrap() {
            let id = case["id"].as_u64().unwrap().to_string();
            match case["host"].as_str() {
                Some(host) => assert_eq!(domain(&id).unwrap(), host),
                None => assert!(matches!(domain(&id), Err(CliError::BadDomain(_)))),
            }
        }
        assert!(matches!(
            domain("65536"),
            Err(CliError::DomainIdNotANumber { .. })
        ));
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        assert!(matches!(qr("FIDO:/123"), Err(CliError::BadQr(_))));
        let v = vectors();
        let uri = v["transcripts"]["qr_knpsk0"]["qr_uri"].as_str().unwrap();
        assert!(matches!(advert(uri, "zz"), Err(CliError::AdvertNotHex(_))));
        assert!(matches!(advert(uri, "00"), Err(CliError::BadAdvert(_))));
    }
}
