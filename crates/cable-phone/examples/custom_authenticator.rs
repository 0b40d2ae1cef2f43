//! Serve one ceremony from a scanned QR code with an authenticator of your own.
//!
//! ```sh
//! cargo run -p cable-phone --example custom_authenticator -- 'FIDO:/…' wss://relay.example
//! ```
//!
//! The authenticator here answers only for relying parties on an allow list and hands
//! the rest to the bundled software authenticator (credentials in memory); an app keeps
//! its credentials in its own vault instead. The advert is printed (`advert: <hex>`) for
//! another program to broadcast; `cable_ble::BluezAdvertiser` puts it on the air on Linux.

use cable_phone::{
    AlwaysApprove, Authenticator, CtapStatus, PasskeyStore, PhoneSession, PrintAdvertiser,
    SoftwareAuthenticator,
};
use cable_proto::cbor::{map_get, Value};
use tokio_util::sync::CancellationToken;

/// CTAP2_ERR_OPERATION_DENIED: what a person declining on a phone gives.
const DENIED: CtapStatus = CtapStatus(0x27);

struct AllowList {
    allowed: Vec<String>,
    inner: SoftwareAuthenticator,
}

impl AllowList {
    /// The relying party id: `rp.id` (key 2) of makeCredential, `rpId` (key 1) of
    /// getAssertion.
    fn check(&self, rp_id: Option<&str>) -> Result<(), CtapStatus> {
        match rp_id {
            Some(id) if self.allowed.iter().any(|a| a == id) => Ok(()),
            _ => Err(DENIED),
        }
    }
}

#[async_trait::async_trait]
impl Authenticator for AllowList {
    async fn get_info(&self) -> Value {
        self.inner.get_info().await
    }

    async fn make_credential(&mut self, params: Value) -> Result<Value, CtapStatus> {
        let rp_id = params
            .as_map()
            .and_then(|m| map_get(m, 2))
            .and_then(Value::as_map)
            .and_then(|rp| rp.get(&Value::Text("id".into())))
            .and_then(Value::as_text);
        self.check(rp_id)?;
        self.inner.make_credential(params).await
    }

    async fn get_assertion(&mut self, params: Value) -> Result<Value, CtapStatus> {
        let rp_id = params
            .as_map()
            .and_then(|m| map_get(m, 1))
            .and_then(Value::as_text);
        self.check(rp_id)?;
        self.inner.get_assertion(params).await
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(qr_text), Some(relay)) = (args.next(), args.next()) else {
        eprintln!("usage: custom_authenticator 'FIDO:/…' RELAY_URL");
        std::process::exit(2);
    };
    let authenticator = AllowList {
        allowed: vec!["example.com".into()],
        inner: SoftwareAuthenticator::new(PasskeyStore::in_memory(), AlwaysApprove),
    };
    let mut session =
        PhoneSession::new(qr_text, PrintAdvertiser::stdout(), authenticator).relay(relay.parse()?);
    let mut progress = session.progress();
    tokio::spawn(async move {
        while let Some(step) = progress.recv().await {
            eprintln!("{step:?}");
        }
    });
    let outcome = session.run(CancellationToken::new()).await?;
    eprintln!("{outcome:?}");
    Ok(())
}
