//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::VecDeque;

use rand_core::{CryptoRng, RngCore};

/// An RNG that hands out exactly the bytes it was given, so that a test can
/// make the code under test draw known keys through its normal API.
pub struct ReplayRng(VecDeque<u8>);

impl ReplayRng {
    pub fn new(chunks: &[&[u8]]) -> Self {
        ReplayRng(chunks.iter().flat_map(|c| c.iter().copied()).collect())
    }

    pub fn is_exhausted(&self) -> bool {
        self.0.is_empty()
    }
}

impl RngCore for ReplayRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for d in dest {
            *d = self.0.pop_front().expect("ReplayRng ran out of bytes");
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for ReplayRng {}

/// The shared vectors, read from the repository's copy.
pub fn vectors() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/vectors/hybrid.json"
    );
    let text = std::fs::read_to_string(path).expect("read hybrid.json");
    serde_json::from_str(&text).expect("parse hybrid.json")
}

pub fn hex_field(v: &serde_json::Value, key: &str) -> Vec<u8> {
    let s = v[key]
        .as_str()
        .unwrap_or_else(|| panic!("missing string field {key}"));
    hex::decode(s).unwrap_or_else(|_| panic!("field {key} is not hex"))
}

pub fn str_field<'a>(v: &'a serde_json::Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("missing string field {key}"))
}

pub fn arr<const N: usize>(bytes: &[u8]) -> [u8; N] {
    bytes.try_into().expect("length")
}
