//! In the VM: Firefox's own CTAP library (authenticator-rs, the code Firefox uses for USB
//! security keys) registers a credential through `cable key`, signs in with it behind an
//! allow list that names another authenticator's credential first, signs in with no list,
//! and registers again while the phone's credential is excluded. Like Firefox, the library
//! asks the key silently (`up: false`) which listed credential it holds before each list,
//! and gives up without asking the phone when the key says "none".
//!
//! The signatures are checked here with the public key the phone returned (p256), over the
//! authenticator data the library parsed and the client data hash this program chose.
//!
//!     cable-vm-authenticator-rs

use std::process::ExitCode;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::Duration;

use authenticator::authenticatorservice::{AuthenticatorService, RegisterArgs, SignArgs};
use authenticator::crypto::{COSEAlgorithm, COSEKeyType};
use authenticator::ctap2::commands::StatusCode;
use authenticator::ctap2::server::{
    PublicKeyCredentialDescriptor, PublicKeyCredentialParameters, PublicKeyCredentialUserEntity,
    RelyingParty, ResidentKeyRequirement, Transport, UserVerificationRequirement,
};
use authenticator::errors::{AuthenticatorError, CommandError, HIDError};
use authenticator::statecallback::StateCallback;
use authenticator::{RegisterResult, SignResult, StatusUpdate};
use p256::ecdsa::signature::Verifier;
use sha2::{Digest, Sha256};

const RP_ID: &str = "example.net";
const ORIGIN: &str = "https://example.net";
/// Each ceremony waits for a person scanning a QR code (the guest's phone loop).
const TIMEOUT: Duration = Duration::from_secs(90);

fn main() -> ExitCode {
    match run() {
        Ok(()) => {
            println!("authenticator-rs: all ceremonies passed");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("authenticator-rs: FAIL: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Answers what the library asks its user: nothing here has a PIN or a second key.
fn status_thread(status: Receiver<StatusUpdate>) {
    std::thread::spawn(move || {
        for update in status {
            match update {
                StatusUpdate::PresenceRequired => println!("authenticator-rs: presence required"),
                StatusUpdate::SelectResultNotice(choose, users) => {
                    println!(
                        "authenticator-rs: {} accounts; taking the first",
                        users.len()
                    );
                    let _ = choose.send(Some(0));
                }
                other => println!("authenticator-rs: status {other:?}"),
            }
        }
    });
}

fn hash(what: &str) -> [u8; 32] {
    Sha256::digest(what.as_bytes()).into()
}

fn descriptor(id: &[u8]) -> PublicKeyCredentialDescriptor {
    PublicKeyCredentialDescriptor {
        id: id.to_vec(),
        transports: vec![Transport::USB],
    }
}

fn register(
    service: &mut AuthenticatorService,
    status: &Sender<StatusUpdate>,
    exclude_list: Vec<PublicKeyCredentialDescriptor>,
) -> authenticator::Result<RegisterResult> {
    let args = RegisterArgs {
        client_data_hash: hash("registration"),
        relying_party: RelyingParty {
            id: RP_ID.into(),
            name: Some("Example".into()),
        },
        origin: ORIGIN.into(),
        user: PublicKeyCredentialUserEntity {
            id: b"user-grace".to_vec(),
            name: Some("grace".into()),
            display_name: Some("Grace".into()),
        },
        pub_cred_params: vec![PublicKeyCredentialParameters {
            alg: COSEAlgorithm::ES256,
        }],
        exclude_list,
        user_verification_req: UserVerificationRequirement::Preferred,
        resident_key_req: ResidentKeyRequirement::Required,
        extensions: Default::default(),
        pin: None,
        use_ctap1_fallback: false,
    };
    answer(|callback| service.register(millis(), args, status.clone(), callback))
}

fn sign(
    service: &mut AuthenticatorService,
    status: &Sender<StatusUpdate>,
    client_data_hash: [u8; 32],
    allow_list: Vec<PublicKeyCredentialDescriptor>,
) -> authenticator::Result<SignResult> {
    let args = SignArgs {
        client_data_hash,
        origin: ORIGIN.into(),
        relying_party_id: RP_ID.into(),
        allow_list,
        user_verification_req: UserVerificationRequirement::Preferred,
        user_presence_req: true,
        extensions: Default::default(),
        pin: None,
        use_ctap1_fallback: false,
    };
    answer(|callback| service.sign(millis(), args, status.clone(), callback))
}

/// Starts a request with a callback and waits for what the library hands it.
fn answer<T: Send + 'static>(
    start: impl FnOnce(StateCallback<authenticator::Result<T>>) -> authenticator::Result<()>,
) -> authenticator::Result<T> {
    let (tx, rx) = channel();
    start(StateCallback::new(Box::new(move |r| {
        let _ = tx.send(r);
    })))?;
    rx.recv()
        .unwrap_or(Err(AuthenticatorError::CancelledByUser))
}

fn millis() -> u64 {
    u64::try_from(TIMEOUT.as_millis()).unwrap_or(u64::MAX)
}

/// Checks an assertion: the credential named, user presence, the relying party, and the
/// signature over the authenticator data and `client_data_hash`.
fn check_assertion(
    signed: &SignResult,
    credential_id: &[u8],
    key: &p256::ecdsa::VerifyingKey,
    client_data_hash: &[u8; 32],
) -> Result<(), String> {
    let assertion = &signed.assertion;
    let named = assertion
        .credentials
        .as_ref()
        .map(|c| c.id.clone())
        .ok_or("the assertion names no credential")?;
    if named != credential_id {
        return Err(format!(
            "signed with {}, not the phone's credential",
            hex(&named)
        ));
    }
    if assertion.auth_data.rp_id_hash.as_ref() != hash(RP_ID) {
        return Err("the assertion is for another relying party".into());
    }
    if assertion.auth_data.flags.bits() & 0x01 == 0 {
        return Err("the assertion says the user was not present".into());
    }
    let mut message = assertion.auth_data.to_vec();
    message.extend_from_slice(client_data_hash);
    let signature = p256::ecdsa::DerSignature::try_from(assertion.signature.as_slice())
        .map_err(|e| format!("the signature is not DER: {e}"))?;
    key.verify(&message, &signature)
        .map_err(|_| "the signature does not verify with the registered key".to_owned())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn run() -> Result<(), String> {
    let mut service =
        AuthenticatorService::new().map_err(|e| format!("cannot start the service: {e:?}"))?;
    service.add_u2f_usb_hid_platform_transports();
    let (status, status_rx) = channel();
    status_thread(status_rx);

    let made = register(&mut service, &status, vec![])
        .map_err(|e| format!("registration failed: {e:?}"))?;
    let auth_data = &made.att_obj.auth_data;
    if auth_data.rp_id_hash.as_ref() != hash(RP_ID) || auth_data.flags.bits() & 0x41 != 0x41 {
        return Err(
            "the registration's authenticator data is not for this site, or lacks UP/AT".into(),
        );
    }
    let credential = auth_data
        .credential_data
        .as_ref()
        .ok_or("the registration carries no credential")?;
    let COSEKeyType::EC2(ec2) = &credential.credential_public_key.key else {
        return Err("the credential's key is not an EC2 key".into());
    };
    let point = p256::EncodedPoint::from_affine_coordinates(
        ec2.x.as_slice().into(),
        ec2.y.as_slice().into(),
        false,
    );
    let key = p256::ecdsa::VerifyingKey::from_encoded_point(&point)
        .map_err(|_| "the credential's key is not a P-256 point")?;
    let credential_id = credential.credential_id.clone();
    println!("authenticator-rs: registered {}", hex(&credential_id));

    // Another authenticator's credential first: the library probes the list and sends the
    // one the key names; the phone signs with its own.
    let elsewhere = [0x5a; 48];
    let client_data_hash = hash("sign in with a list");
    let signed = sign(
        &mut service,
        &status,
        client_data_hash,
        vec![descriptor(&elsewhere), descriptor(&credential_id)],
    )
    .map_err(|e| format!("sign-in with an allow list failed: {e:?}"))?;
    check_assertion(&signed, &credential_id, &key, &client_data_hash)?;
    println!("authenticator-rs: signed in with an allow list after its silent probe");

    let client_data_hash = hash("sign in with the passkey");
    let signed = sign(&mut service, &status, client_data_hash, vec![])
        .map_err(|e| format!("passkey sign-in failed: {e:?}"))?;
    check_assertion(&signed, &credential_id, &key, &client_data_hash)?;
    println!("authenticator-rs: signed in with the passkey (no allow list)");

    match register(
        &mut service,
        &status,
        vec![descriptor(&elsewhere), descriptor(&credential_id)],
    ) {
        Err(AuthenticatorError::CredentialExcluded)
        | Err(AuthenticatorError::HIDError(HIDError::Command(CommandError::StatusCode(
            StatusCode::CredentialExcluded,
            _,
        )))) => {
            println!("authenticator-rs: the exclude list reached the phone (credential excluded)");
            Ok(())
        }
        Err(e) => Err(format!("the excluded registration failed otherwise: {e:?}")),
        Ok(_) => Err("registered although the phone's credential was excluded".into()),
    }
}
