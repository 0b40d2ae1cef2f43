//! What a scanner hands out: one received caBLE service-data advert.

use std::fmt;

use uuid::Uuid;

/// Length of the caBLE v2 advert payload (encrypted EID + 4-byte tag).
pub const ADVERT_LEN: usize = 20;

/// The 16-bit service UUIDs under which caBLE v2 adverts are sent (PROTOCOL.md §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CableServiceUuid {
    /// `0xFFF9`, assigned to the FIDO Alliance; sent by current Chrome on Android.
    Fido,
    /// `0xFDE2`, Google's member UUID; sent by older Chrome on Android.
    Google,
}

impl CableServiceUuid {
    /// Both UUIDs, in the order Chromium looks them up (Google first, then FIDO).
    pub const ALL: [CableServiceUuid; 2] = [CableServiceUuid::Google, CableServiceUuid::Fido];

    /// The 16-bit short form.
    pub const fn short(self) -> u16 {
        match self {
            CableServiceUuid::Fido => 0xFFF9,
            CableServiceUuid::Google => 0xFDE2,
        }
    }

    /// The full 128-bit form under the Bluetooth base UUID.
    pub const fn uuid(self) -> Uuid {
        Uuid::from_u128(((self.short() as u128) << 96) | BLUETOOTH_BASE_UUID)
    }

    /// Recognises either UUID in its 128-bit form.
    pub fn from_uuid(uuid: &Uuid) -> Option<Self> {
        Self::ALL.into_iter().find(|u| u.uuid() == *uuid)
    }
}

impl fmt::Display for CableServiceUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X}", self.short())
    }
}

/// `0000xxxx-0000-1000-8000-00805f9b34fb` with `xxxx` = 0.
const BLUETOOTH_BASE_UUID: u128 = 0x0000_0000_0000_1000_8000_0080_5f9b_34fb;

/// A caBLE advert as seen by a scanner.
///
/// The service data is at least [`ADVERT_LEN`] bytes; anything after the first 20 bytes is a
/// CTAP 2.3 suffix that is kept for the caller to interpret or ignore.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReceivedAdvert {
    service: CableServiceUuid,
    service_data: Vec<u8>,
    /// Address of the sender as reported by the stack, for logs only (it is random per advert).
    pub peer_address: Option<String>,
    /// Local name of the sender, if the stack had one, for logs only.
    pub peer_name: Option<String>,
}

impl ReceivedAdvert {
    /// Accepts service data seen under `service_uuid` if it is caBLE data: one of the two
    /// caBLE UUIDs and at least 20 bytes. Everything else yields `None` and is meant to be
    /// skipped silently, since any nearby device can send anything.
    pub fn from_service_data(service_uuid: &Uuid, data: &[u8]) -> Option<Self> {
        let service = CableServiceUuid::from_uuid(service_uuid)?;
        if data.len() < ADVERT_LEN {
            return None;
        }
        Some(ReceivedAdvert {
            service,
            service_data: data.to_vec(),
            peer_address: None,
            peer_name: None,
        })
    }

    /// Builder-style: records the sender for logs.
    pub fn with_peer(mut self, address: Option<String>, name: Option<String>) -> Self {
        self.peer_address = address;
        self.peer_name = name;
        self
    }

    /// Which of the two UUIDs carried the data.
    pub fn service(&self) -> CableServiceUuid {
        self.service
    }

    /// The whole service data, suffix included.
    pub fn service_data(&self) -> &[u8] {
        &self.service_data
    }

    /// The 20-byte caBLE payload (the first 20 bytes of the service data).
    pub fn payload(&self) -> [u8; ADVERT_LEN] {
        let mut out = [0u8; ADVERT_LEN];
        out.copy_from_slice(&self.service_data[..ADVERT_LEN]);
        out
    }

    /// Bytes after the 20-byte payload (empty for Chromium-style adverts).
    pub fn suffix(&self) -> &[u8] {
        &self.service_data[ADVERT_LEN..]
    }
}

impl fmt::Debug for ReceivedAdvert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The payload is an encrypted, authenticated EID: safe to show, and useful in logs.
        f.debug_struct("ReceivedAdvert")
            .field("service", &self.service)
            .field("service_data", &hex::encode(&self.service_data))
            .field("peer_address", &self.peer_address)
            .field("peer_name", &self.peer_name)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_have_the_bluetooth_base_form() {
        assert_eq!(
            CableServiceUuid::Fido.uuid().to_string(),
            "0000fff9-0000-1000-8000-00805f9b34fb"
        );
        assert_eq!(
            CableServiceUuid::Google.uuid().to_string(),
            "0000fde2-0000-1000-8000-00805f9b34fb"
        );
    }

    #[test]
    fn accepts_both_uuids_and_keeps_suffix() {
        let data: Vec<u8> = (0..25).collect();
        let a = ReceivedAdvert::from_service_data(&CableServiceUuid::Google.uuid(), &data)
            .expect("accepted");
        assert_eq!(a.service(), CableServiceUuid::Google);
        assert_eq!(a.payload().as_slice(), &data[..20]);
        assert_eq!(a.suffix(), &data[20..]);
        let a = ReceivedAdvert::from_service_data(&CableServiceUuid::Fido.uuid(), &data[..20])
            .expect("accepted");
        assert!(a.suffix().is_empty());
    }

    #[test]
    fn rejects_short_data_and_other_uuids() {
        assert!(
            ReceivedAdvert::from_service_data(&CableServiceUuid::Fido.uuid(), &[0; 19]).is_none()
        );
        let other = Uuid::from_u128(0x0000_180f_0000_1000_8000_0080_5f9b_34fb);
        assert!(ReceivedAdvert::from_service_data(&other, &[0; 20]).is_none());
    }
}
