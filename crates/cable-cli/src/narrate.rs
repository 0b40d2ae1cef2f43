//! One sentence per progress event of either side, shared by `register`/`login`, `phone` and
//! `demo`, so the same event reads the same wherever it is shown.

use cable_client::Progress as ComputerProgress;
use cable_phone::Progress as PhoneProgress;

/// What the computer side is doing.
pub fn computer(progress: &ComputerProgress) -> String {
    match progress {
        ComputerProgress::Scanning => "waiting for the phone's advert…".to_owned(),
        ComputerProgress::AdvertFound { relay, .. } => {
            format!("phone found, joining its tunnel at {relay}…")
        }
        ComputerProgress::TunnelConnected => "tunnel open, handshake…".to_owned(),
        ComputerProgress::HandshakeComplete { .. } => {
            "secure channel to the phone established".to_owned()
        }
        ComputerProgress::RequestSent => "confirm on the phone…".to_owned(),
        ComputerProgress::ReplyReceived => "the phone answered".to_owned(),
        ComputerProgress::LinkingOffered {
            authenticator_name,
            verified: true,
        } => format!("{authenticator_name} offered to stay linked"),
        ComputerProgress::LinkingOffered {
            authenticator_name,
            verified: false,
        } => format!("{authenticator_name} offered linking data that does not verify: ignored"),
        ComputerProgress::PhoneLinked { name } => {
            format!("phone linked as {name:?} (see `cable phones list`)")
        }
        ComputerProgress::LinkNotSaved { reason } => {
            format!("the phone could not be linked: {reason}")
        }
        ComputerProgress::Finished => "done".to_owned(),
        // `Progress` is non-exhaustive: an event this CLI does not know yet still shows up.
        _ => "working…".to_owned(),
    }
}

/// What the phone side is doing.
pub fn phone(progress: &PhoneProgress) -> String {
    match progress {
        PhoneProgress::TunnelOpen { routing_id } => {
            format!(
                "tunnel open on the relay (routing id {})",
                routing_id.to_hex()
            )
        }
        // Tests and scripts pick the advert's bytes out of this line: keep "advertising <hex>".
        PhoneProgress::Advertising { advert } => {
            format!(
                "advertising {}, waiting for the computer",
                hex::encode(advert)
            )
        }
        PhoneProgress::ComputerConnected => "computer connected, handshake complete".to_owned(),
        PhoneProgress::LinkOffered => {
            "linked: this computer can reach the phone later without a QR code".to_owned()
        }
        PhoneProgress::RequestReceived { kind, rp_id } => format!(
            "{} request for {}",
            kind.as_str(),
            rp_id.as_deref().unwrap_or("(no relying party)")
        ),
        PhoneProgress::Replied { status: 0 } => "replied: success".to_owned(),
        PhoneProgress::Replied { status } => format!(
            "replied: CTAP error {status:#04x} ({})",
            cable_client::ctap_status_name(*status)
        ),
        // Non-exhaustive as well; its Debug form is better than nothing.
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_phone_names_its_advert_and_its_refusals() {
        let line = phone(&PhoneProgress::Advertising { advert: [0xab; 20] });
        assert!(line.starts_with(&format!("advertising {}", "ab".repeat(20))));
        assert_eq!(
            phone(&PhoneProgress::Replied { status: 0x27 }),
            "replied: CTAP error 0x27 (CTAP2_ERR_OPERATION_DENIED)"
        );
    }

    #[test]
    fn the_computer_narrates_every_event() {
        assert_eq!(
            computer(&ComputerProgress::RequestSent),
            "confirm on the phone…"
        );
    }
}
