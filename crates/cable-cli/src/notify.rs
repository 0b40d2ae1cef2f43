//! Desktop notifications for `cable key` (org.freedesktop.Notifications on the session
//! bus): the QR code as the notification's image, so that a person signing in from a
//! browser sees it without looking for the terminal, and a "Use this key" action for the
//! confirmation authenticatorSelection asks for.
//!
//! One thread owns the bus connection; the bridge's tasks send it commands.

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use dbus::arg::{RefArg, Variant};
use dbus::blocking::{Connection, Proxy};
use dbus::message::MatchRule;
use std::hash::Hash;
use tokio::sync::oneshot;
use zeroize::{Zeroize, Zeroizing};

const SERVICE: &str = "org.freedesktop.Notifications";
const PATH: &str = "/org/freedesktop/Notifications";
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// The action key of "Use this key".
const CONFIRM_ACTION: &str = "confirm";
/// NotificationClosed's reason when the person dismissed it.
const DISMISSED: u32 = 2;

/// An image for the `image-data` hint: 8-bit RGB rows.
pub struct Image {
    pub width: i32,
    pub height: i32,
    pub rgb: Zeroizing<Vec<u8>>,
}

enum Cmd<K> {
    Show {
        request: K,
        summary: String,
        body: String,
        image: Option<Image>,
    },
    Close {
        request: K,
    },
    Confirm {
        request: K,
        summary: String,
        answer: oneshot::Sender<bool>,
    },
}

/// Sends notifications through the thread that owns the bus connection; `K` names the
/// request each notification is about.
pub struct Notifier<K> {
    to_thread: Sender<Cmd<K>>,
}

impl<K> std::fmt::Debug for Notifier<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Notifier")
    }
}

/// Why there are no notifications.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("no session bus")]
    NoBus(#[source] dbus::Error),
    #[error("no notification server on the session bus")]
    NoServer(#[source] dbus::Error),
    #[error("cannot start the notification thread")]
    Thread(#[source] std::io::Error),
}

impl<K: Hash + Eq + Send + 'static> Notifier<K> {
    /// Notifications through the session bus of this login session.
    pub fn session() -> Result<Self, NotifyError> {
        Self::on(Connection::new_session().map_err(NotifyError::NoBus)?)
    }

    /// Notifications through the bus at `address` (tests).
    #[cfg(test)]
    pub fn at(address: &str) -> Result<Self, NotifyError> {
        let mut channel =
            dbus::channel::Channel::open_private(address).map_err(NotifyError::NoBus)?;
        channel.register().map_err(NotifyError::NoBus)?;
        Self::on(Connection::from(channel))
    }

    fn on(conn: Connection) -> Result<Self, NotifyError> {
        // Asked now, so that a desktop without a server is known before the first ceremony.
        let (name, vendor, _, _): (String, String, String, String) = proxy(&conn)
            .method_call(SERVICE, "GetServerInformation", ())
            .map_err(NotifyError::NoServer)?;
        tracing::debug!(%name, %vendor, "notification server");
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("notifications".into())
            .spawn(move || serve(conn, rx))
            .map_err(NotifyError::Thread)?;
        Ok(Notifier { to_thread: tx })
    }

    fn send(&self, cmd: Cmd<K>) {
        // The thread ends only when the bus goes away; then there is nobody to show to.
        let _ = self.to_thread.send(cmd);
    }

    /// Shows (or replaces) the notification of `request`.
    pub fn show(&self, request: K, summary: String, body: String, image: Option<Image>) {
        self.send(Cmd::Show {
            request,
            summary,
            body,
            image,
        });
    }

    /// Takes the notification of `request` away.
    pub fn close(&self, request: K) {
        self.send(Cmd::Close { request });
    }

    /// Asks with a "Use this key" action: `true` when it is chosen, `false` when the
    /// notification is dismissed. Dropping the future leaves the notification to
    /// [`Notifier::close`].
    pub async fn confirm(&self, request: K, summary: String) -> bool {
        let (answer, answered) = oneshot::channel();
        self.send(Cmd::Confirm {
            request,
            summary,
            answer,
        });
        answered.await.unwrap_or(false)
    }
}

fn proxy(conn: &Connection) -> Proxy<'_, &Connection> {
    conn.with_proxy(SERVICE, PATH, CALL_TIMEOUT)
}

enum Signal {
    Action(u32, String),
    Closed(u32, u32),
}

fn serve<K: Hash + Eq>(conn: Connection, commands: Receiver<Cmd<K>>) {
    let (signals_tx, signals) = mpsc::channel();
    let tx = signals_tx.clone();
    let watched = conn
        .add_match(
            MatchRule::new_signal(SERVICE, "ActionInvoked"),
            move |(id, key): (u32, String), _, _| {
                let _ = tx.send(Signal::Action(id, key));
                true
            },
        )
        .and_then(|_| {
            conn.add_match(
                MatchRule::new_signal(SERVICE, "NotificationClosed"),
                move |(id, reason): (u32, u32), _, _| {
                    let _ = signals_tx.send(Signal::Closed(id, reason));
                    true
                },
            )
        });
    if let Err(e) = watched {
        tracing::warn!(error = %e, "notification actions will not be seen");
    }
    // The server's id of each request's notification, and the confirmations waited for.
    let mut shown: HashMap<K, u32> = HashMap::new();
    let mut waiting: HashMap<u32, oneshot::Sender<bool>> = HashMap::new();
    loop {
        match commands.recv_timeout(Duration::from_millis(50)) {
            Ok(cmd) => handle(&conn, cmd, &mut shown, &mut waiting),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if let Err(e) = conn.process(Duration::ZERO) {
            tracing::warn!(error = %e, "the session bus went away: no more notifications");
            break;
        }
        while let Ok(signal) = signals.try_recv() {
            match signal {
                Signal::Action(id, key) => {
                    if let Some(answer) = waiting.remove(&id) {
                        let _ = answer.send(key == CONFIRM_ACTION || key == "default");
                    }
                }
                Signal::Closed(id, reason) => {
                    if let Some(answer) = waiting.remove(&id) {
                        if reason == DISMISSED {
                            let _ = answer.send(false);
                        }
                    }
                }
            }
        }
        waiting.retain(|_, answer| !answer.is_closed());
    }
    for id in shown.into_values() {
        let _: Result<(), _> = proxy(&conn).method_call(SERVICE, "CloseNotification", (id,));
    }
}

fn handle<K: Hash + Eq>(
    conn: &Connection,
    cmd: Cmd<K>,
    shown: &mut HashMap<K, u32>,
    waiting: &mut HashMap<u32, oneshot::Sender<bool>>,
) {
    match cmd {
        Cmd::Show {
            request,
            summary,
            body,
            image,
        } => {
            let replaces = shown.get(&request).copied().unwrap_or(0);
            match notify(conn, replaces, &summary, &body, &[], image.as_ref()) {
                Ok(id) => {
                    shown.insert(request, id);
                }
                Err(e) => tracing::warn!(error = %e, "cannot show a notification"),
            }
        }
        Cmd::Close { request } => {
            if let Some(id) = shown.remove(&request) {
                waiting.remove(&id);
                let closed: Result<(), _> =
                    proxy(conn).method_call(SERVICE, "CloseNotification", (id,));
                if let Err(e) = closed {
                    tracing::debug!(error = %e, "cannot close a notification");
                }
            }
        }
        Cmd::Confirm {
            request,
            summary,
            answer,
        } => {
            let replaces = shown.get(&request).copied().unwrap_or(0);
            let actions = ["default", "Use this key", CONFIRM_ACTION, "Use this key"];
            let body = "An app asks to use your phone as its security key.";
            match notify(conn, replaces, &summary, body, &actions, None) {
                Ok(id) => {
                    shown.insert(request, id);
                    waiting.insert(id, answer);
                }
                Err(e) => {
                    // The terminal may still ask; this way does not answer.
                    tracing::warn!(error = %e, "cannot show a notification");
                    drop(answer);
                }
            }
        }
    }
}

fn notify(
    conn: &Connection,
    replaces: u32,
    summary: &str,
    body: &str,
    actions: &[&str],
    image: Option<&Image>,
) -> Result<u32, dbus::Error> {
    let mut hints: HashMap<&str, Variant<Box<dyn RefArg>>> = HashMap::new();
    // Critical: stays up until closed, which the bridge does when the ceremony ends.
    hints.insert("urgency", Variant(Box::new(2u8)));
    hints.insert("resident", Variant(Box::new(true)));
    if let Some(image) = image {
        let rowstride = image.width * 3;
        hints.insert(
            "image-data",
            Variant({
                let data: ImageData = (
                    image.width,
                    image.height,
                    rowstride,
                    false,
                    8,
                    3,
                    image.rgb.to_vec(),
                );
                Box::new(data)
            }),
        );
    }
    let sent: Result<(u32,), _> = proxy(conn).method_call(
        SERVICE,
        "Notify",
        (
            "cable key",
            replaces,
            "security-high",
            summary,
            body,
            actions.to_vec(),
            &hints,
            0i32,
        ),
    );
    // The image is the QR code, which holds the session's secret: wipe this copy.
    if let Some(Variant(image)) = hints.get_mut("image-data") {
        if let Some(image) = image.as_any_mut().downcast_mut::<ImageData>() {
            image.6.zeroize();
        }
    }
    Ok(sent?.0)
}

/// The `image-data` hint's `(iiibiiay)`.
type ImageData = (i32, i32, i32, bool, i32, i32, Vec<u8>);

#[cfg(test)]
mod tests {
    //! Against python-dbusmock's notification daemon on a private bus.

    use super::*;
    use crate::render::Rendered;
    use cable_ble::testing::{MockBluez, MockOptions};
    use std::process::{Child, Command, Stdio};
    use std::time::Instant;

    const MOCK: &str = "org.freedesktop.DBus.Mock";

    struct MockServer {
        _bus: MockBluez,
        child: Child,
        address: String,
    }

    impl Drop for MockServer {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn mock_server() -> MockServer {
        let bus = MockBluez::start_with(MockOptions {
            bluez: false,
            ..MockOptions::default()
        })
        .expect("a private bus (dbus-daemon)");
        let address = bus.bus_address().to_owned();
        let python = std::env::var(cable_ble::testing::PYTHON_ENV)
            .unwrap_or_else(|_| "/usr/bin/python3".into());
        let child = Command::new(python)
            .args(["-m", "dbusmock", "--template", "notification_daemon"])
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 with python-dbusmock");
        MockServer {
            _bus: bus,
            child,
            address,
        }
    }

    fn connect(address: &str) -> Connection {
        let mut channel = dbus::channel::Channel::open_private(address).expect("bus");
        channel.register().expect("hello");
        Connection::from(channel)
    }

    fn notifier(server: &MockServer) -> Notifier<u32> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match Notifier::at(&server.address) {
                Ok(n) => return n,
                Err(NotifyError::NoServer(_)) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("no notifier: {e:?}"),
            }
        }
    }

    type Calls = Vec<(u64, Vec<Variant<Box<dyn RefArg>>>)>;

    fn notify_calls(conn: &Connection, count: usize) -> Calls {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (calls,): (Calls,) = proxy(conn)
                .method_call(MOCK, "GetMethodCalls", ("Notify",))
                .expect("the mock's call log");
            if calls.len() >= count || Instant::now() > deadline {
                return calls;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn emit(conn: &Connection, name: &str, signature: &str, args: Vec<Box<dyn RefArg>>) {
        let args: Vec<Variant<Box<dyn RefArg>>> = args.into_iter().map(Variant).collect();
        let () = proxy(conn)
            .method_call(MOCK, "EmitSignal", (SERVICE, name, signature, args))
            .expect("signal emitted");
    }

    /// The value of `key` in an a{sv} argument.
    fn hint<'a>(hints: &'a dyn RefArg, key: &str) -> Option<&'a dyn RefArg> {
        let mut items = hints.as_iter()?;
        while let (Some(k), Some(v)) = (items.next(), items.next()) {
            if k.as_str() == Some(key) {
                return v.as_iter()?.next();
            }
        }
        None
    }

    #[test]
    fn qr_image_then_confirm_and_dismiss_through_the_notification_server() {
        let server = mock_server();
        let notifier = notifier(&server);
        let conn = connect(&server.address);

        let (side, rgb) = Rendered::new("FIDO:/1234567890").expect("qr").rgb(2);
        let width = i32::try_from(side).expect("small");
        notifier.show(
            7,
            "Scan with your phone".into(),
            "body".into(),
            Some(Image {
                width,
                height: width,
                rgb,
            }),
        );
        let calls = notify_calls(&conn, 1);
        assert_eq!(calls.len(), 1, "one Notify call");
        let args = &calls[0].1;
        assert_eq!(args[0].0.as_str(), Some("cable key"));
        assert_eq!(args[3].0.as_str(), Some("Scan with your phone"));
        let image = hint(&*args[6].0, "image-data").expect("an image-data hint");
        let fields: Vec<_> = image.as_iter().expect("a struct").collect();
        assert_eq!(fields[0].as_i64(), Some(i64::from(width)));
        assert_eq!(fields[1].as_i64(), Some(i64::from(width)));
        assert_eq!(fields[2].as_i64(), Some(i64::from(width) * 3), "rowstride");
        assert_eq!(fields[5].as_i64(), Some(3), "channels");
        assert_eq!(fields[6].as_iter().expect("bytes").count(), side * side * 3);
        assert_eq!(
            hint(&*args[6].0, "urgency").and_then(|u| u.as_u64()),
            Some(2)
        );

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        // "Use this key" answers yes. The mock numbers notifications from 1.
        let confirmed = runtime.block_on(async {
            let asking = notifier.confirm(8, "Use it?".into());
            let emitting = async {
                let calls = tokio::task::block_in_place(|| notify_calls(&conn, 2));
                assert_eq!(calls.len(), 2);
                let actions: Vec<_> = calls[1].1[5]
                    .0
                    .as_iter()
                    .expect("actions")
                    .filter_map(|a| a.as_str().map(str::to_owned))
                    .collect();
                assert!(actions.contains(&CONFIRM_ACTION.to_owned()), "{actions:?}");
                emit(
                    &conn,
                    "ActionInvoked",
                    "us",
                    vec![Box::new(2u32), Box::new(CONFIRM_ACTION.to_owned())],
                );
            };
            tokio::join!(asking, emitting).0
        });
        assert!(confirmed);

        // Dismissing it answers no.
        let confirmed = runtime.block_on(async {
            let asking = notifier.confirm(9, "Use it?".into());
            let emitting = async {
                tokio::task::block_in_place(|| notify_calls(&conn, 3));
                emit(
                    &conn,
                    "NotificationClosed",
                    "uu",
                    vec![Box::new(3u32), Box::new(DISMISSED)],
                );
            };
            tokio::join!(asking, emitting).0
        });
        assert!(!confirmed);
    }
}
