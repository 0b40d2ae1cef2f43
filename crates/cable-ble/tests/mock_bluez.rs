#![cfg(target_os = "linux")]
//! The real btleplug scanner and BlueZ advertiser against a mock BlueZ on a private D-Bus.
//!
//! libdbus fixes the system bus address once per process, so every test starts its own bus and
//! mock, then runs its body in a child process of this test binary pointed at that bus.

use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;
use std::time::Duration;

use cable_ble::testing::{self, MockBluez, MockControl, MockOptions};
use cable_ble::{
    diagnose, AdapterChoice, AdvertStream, Advertiser, BleError, BluezAdvertiser, BtleplugScanner,
    CableServiceUuid, ReceivedAdvert, Scanner,
};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(10);
const FIDO: CableServiceUuid = CableServiceUuid::Fido;
const GOOGLE: CableServiceUuid = CableServiceUuid::Google;
const BATTERY: Uuid = Uuid::from_u128(0x0000_180f_0000_1000_8000_0080_5f9b_34fb);

enum Bus {
    /// A bus with the mock BlueZ, set up by the closure before the child starts.
    Bluez(fn(&MockControl)),
    /// A bus on which nobody owns org.bluez.
    WithoutBluez,
    /// No bus at all.
    Missing,
}

/// Runs `body` for test `name` in a child process whose system bus is given by `bus`.
fn isolated<Fut>(name: &str, bus: Bus, body: fn(Option<MockControl>) -> Fut)
where
    Fut: Future<Output = ()>,
{
    if testing::is_test_child(name) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let control = match bus {
            Bus::Missing => None,
            _ => Some(MockControl::from_env().expect("connect to the mock bus")),
        };
        runtime.block_on(body(control));
        return;
    }
    let mock = match bus {
        Bus::Bluez(setup) => {
            let mock = MockBluez::start().expect("start mock BlueZ");
            setup(&mock.control().expect("control"));
            Some(mock)
        }
        Bus::WithoutBluez => Some(
            MockBluez::start_with(MockOptions {
                bluez: false,
                ..MockOptions::default()
            })
            .expect("start bus"),
        ),
        Bus::Missing => None,
    };
    let missing;
    let address = match &mock {
        Some(mock) => mock.bus_address(),
        None => {
            let dir = tempfile::tempdir().expect("tempdir");
            missing = format!("unix:path={}", dir.path().join("no-bus").display());
            &missing
        }
    };
    let output = testing::run_test_in_child(name, address).expect("run child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let log = mock.as_ref().map(MockBluez::log).unwrap_or_default();
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child for {name} failed ({})\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- mock log\n{log}",
        output.status
    );
}

fn hci0(control: &MockControl) {
    control.add_adapter("hci0").expect("adapter");
}

fn payload(tag: u8) -> Vec<u8> {
    (0..20).map(|i| tag.wrapping_add(i)).collect()
}

async fn next(stream: &mut AdvertStream) -> ReceivedAdvert {
    tokio::time::timeout(WAIT, stream.next_advert())
        .await
        .expect("an advert in time")
        .expect("scan still running")
        .expect("no scan error")
}

async fn open_scanner() -> BtleplugScanner {
    BtleplugScanner::open(&AdapterChoice::Default)
        .await
        .expect("open scanner")
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn new_device_is_found_and_scan_uses_no_uuid_filter() {
    isolated(
        "new_device_is_found_and_scan_uses_no_uuid_filter",
        Bus::Bluez(hci0),
        |control| async move {
            let control = control.expect("control");
            let report = diagnose(&AdapterChoice::Default).await;
            assert!(report.is_ready(), "{report}");
            assert_eq!(report.selected.as_deref(), Some("hci0"));
            assert!(!control.is_discovering("hci0").expect("state"));
            let scanner = open_scanner().await;
            let mut scan = scanner.start_scan().await.expect("start scan");
            assert!(control.is_discovering("hci0").expect("state"));
            // What went over D-Bus: no UUID filter, duplicates reported.
            let (keys, uuids) = control.discovery_filter("hci0").expect("filter");
            assert!(uuids.is_empty(), "scan filter has UUIDs: {uuids:?}");
            assert!(keys.contains(&"DuplicateData".to_owned()), "{keys:?}");
            // LE only: with `auto`, bluetoothd interleaves classic inquiry and many
            // controllers hear no LE adverts for seconds at a time.
            assert_eq!(
                control
                    .discovery_transport("hci0")
                    .expect("filter")
                    .as_deref(),
                Some("le")
            );

            control
                .add_le_device("hci0", "C0:00:00:00:00:01", &[(FIDO.uuid(), payload(1))])
                .expect("device");
            let advert = next(&mut scan).await;
            assert_eq!(advert.service(), FIDO);
            assert_eq!(advert.service_data(), payload(1).as_slice());
            assert_eq!(advert.peer_address.as_deref(), Some("C0:00:00:00:00:01"));

            scan.stop().await;
            assert!(!control.is_discovering("hci0").expect("state"));
        },
    );
}

#[test]
fn repeated_adverts_are_delivered() {
    isolated(
        "repeated_adverts_are_delivered",
        Bus::Bluez(hci0),
        |control| async move {
            let control = control.expect("control");
            let mut scan = open_scanner().await.start_scan().await.expect("scan");
            control
                .add_le_device("hci0", "C0:00:00:00:00:02", &[(FIDO.uuid(), payload(1))])
                .expect("device");
            assert_eq!(next(&mut scan).await.payload().to_vec(), payload(1));
            for tag in [2, 2, 3] {
                control
                    .readvertise("hci0", "C0:00:00:00:00:02", &[(FIDO.uuid(), payload(tag))])
                    .expect("readvertise");
                assert_eq!(next(&mut scan).await.payload().to_vec(), payload(tag));
            }
            scan.stop().await;
        },
    );
}

#[test]
fn stale_cached_device_is_reported_then_new_ones() {
    fn setup(control: &MockControl) {
        hci0(control);
        control
            .add_le_device("hci0", "C0:00:00:00:00:03", &[(FIDO.uuid(), payload(9))])
            .expect("cached device");
    }
    isolated(
        "stale_cached_device_is_reported_then_new_ones",
        Bus::Bluez(setup),
        |control| async move {
            let control = control.expect("control");
            let mut scan = open_scanner().await.start_scan().await.expect("scan");
            // Cached before the scan: reported, possibly stale; the caller decides.
            assert_eq!(next(&mut scan).await.payload().to_vec(), payload(9));
            control
                .add_le_device("hci0", "C0:00:00:00:00:04", &[(FIDO.uuid(), payload(4))])
                .expect("device");
            assert_eq!(next(&mut scan).await.payload().to_vec(), payload(4));
            scan.stop().await;
        },
    );
}

#[test]
fn wrong_lengths_and_other_uuids_are_ignored() {
    isolated(
        "wrong_lengths_and_other_uuids_are_ignored",
        Bus::Bluez(hci0),
        |control| async move {
            let control = control.expect("control");
            let mut scan = open_scanner().await.start_scan().await.expect("scan");
            control
                .add_le_device("hci0", "C0:00:00:00:00:05", &[(FIDO.uuid(), vec![1; 19])])
                .expect("short");
            control
                .add_le_device("hci0", "C0:00:00:00:00:06", &[(BATTERY, payload(5))])
                .expect("other uuid");
            control
                .readvertise("hci0", "C0:00:00:00:00:05", &[(GOOGLE.uuid(), vec![])])
                .expect("empty");
            control
                .add_le_device("hci0", "C0:00:00:00:00:07", &[(FIDO.uuid(), payload(7))])
                .expect("good");
            let advert = next(&mut scan).await;
            assert_eq!(advert.peer_address.as_deref(), Some("C0:00:00:00:00:07"));
            assert_eq!(advert.payload().to_vec(), payload(7));
            scan.stop().await;
        },
    );
}

#[test]
fn both_uuids_and_suffixes_are_accepted() {
    isolated(
        "both_uuids_and_suffixes_are_accepted",
        Bus::Bluez(hci0),
        |control| async move {
            let control = control.expect("control");
            let mut scan = open_scanner().await.start_scan().await.expect("scan");
            control
                .add_le_device("hci0", "C0:00:00:00:00:08", &[(GOOGLE.uuid(), payload(8))])
                .expect("google");
            let advert = next(&mut scan).await;
            assert_eq!(advert.service(), GOOGLE);
            assert_eq!(advert.payload().to_vec(), payload(8));

            let mut suffixed = payload(10);
            suffixed.extend_from_slice(&[0xa1, 0x01, 0xf5]);
            control
                .add_le_device(
                    "hci0",
                    "C0:00:00:00:00:09",
                    &[(FIDO.uuid(), suffixed.clone())],
                )
                .expect("suffixed");
            let advert = next(&mut scan).await;
            assert_eq!(advert.service(), FIDO);
            assert_eq!(advert.payload().to_vec(), payload(10));
            assert_eq!(advert.suffix(), &[0xa1, 0x01, 0xf5]);
            scan.stop().await;
        },
    );
}

#[test]
fn powered_off_adapter_is_reported() {
    fn setup(control: &MockControl) {
        hci0(control);
        control.set_powered("hci0", false).expect("power off");
    }
    isolated(
        "powered_off_adapter_is_reported",
        Bus::Bluez(setup),
        |control| async move {
            let control = control.expect("control");
            match BtleplugScanner::open(&AdapterChoice::Default).await {
                Err(BleError::AdapterPoweredOff { adapter }) => assert_eq!(adapter, "hci0"),
                other => panic!("expected AdapterPoweredOff, got {other:?}"),
            }
            let report = diagnose(&AdapterChoice::Default).await;
            assert!(!report.is_ready());
            assert_eq!(report.adapters.len(), 1);
            assert_eq!(report.adapters[0].powered, Some(false));
            assert!(matches!(
                report.problem,
                Some(BleError::AdapterPoweredOff { .. })
            ));
            assert!(report.to_string().contains("powered off"), "{report}");
            match BluezAdvertiser::open(&AdapterChoice::Default).await {
                Err(BleError::AdapterPoweredOff { adapter }) => assert_eq!(adapter, "hci0"),
                other => panic!("expected AdapterPoweredOff, got {other:?}"),
            }

            // Switched off during a scan: the scan ends with the same error.
            control.set_powered("hci0", true).expect("power on");
            let mut scan = open_scanner().await.start_scan().await.expect("scan");
            control.set_powered("hci0", false).expect("power off");
            let end = tokio::time::timeout(WAIT, async {
                loop {
                    match scan.next_advert().await {
                        Some(Ok(_)) => continue,
                        other => return other,
                    }
                }
            })
            .await
            .expect("scan ends in time");
            assert!(
                matches!(end, Some(Err(BleError::AdapterPoweredOff { .. }))),
                "{end:?}"
            );
        },
    );
}

#[test]
fn no_adapter_is_reported() {
    isolated(
        "no_adapter_is_reported",
        Bus::Bluez(|_| {}),
        |_| async move {
            assert!(matches!(
                BtleplugScanner::open(&AdapterChoice::Default).await,
                Err(BleError::NoAdapter)
            ));
            let report = diagnose(&AdapterChoice::Default).await;
            assert!(matches!(report.problem, Some(BleError::NoAdapter)));
            assert!(matches!(
                BluezAdvertiser::open(&AdapterChoice::Default).await,
                Err(BleError::NoAdapter)
            ));
        },
    );
}

#[test]
fn missing_bluetooth_service_is_reported() {
    isolated(
        "missing_bluetooth_service_is_reported",
        Bus::WithoutBluez,
        |_| async move {
            let report = diagnose(&AdapterChoice::Default).await;
            assert!(
                matches!(report.problem, Some(BleError::NoBluetoothService { .. })),
                "{report:?}"
            );
            assert!(matches!(
                BtleplugScanner::open(&AdapterChoice::Default).await,
                Err(BleError::NoBluetoothService { .. })
            ));
            assert!(matches!(
                BluezAdvertiser::open(&AdapterChoice::Default).await,
                Err(BleError::NoBluetoothService { .. })
            ));
        },
    );
}

#[test]
fn missing_system_bus_is_reported() {
    isolated(
        "missing_system_bus_is_reported",
        Bus::Missing,
        |_| async move {
            let report = diagnose(&AdapterChoice::Default).await;
            assert!(
                matches!(report.problem, Some(BleError::NoBluetoothService { .. })),
                "{report:?}"
            );
            assert!(matches!(
                BluezAdvertiser::open(&AdapterChoice::Default).await,
                Err(BleError::NoBluetoothService { .. })
            ));
        },
    );
}

#[test]
fn permission_denied_is_reported() {
    fn setup(control: &MockControl) {
        hci0(control);
        control
            .set_fault(
                "hci0",
                "StartDiscovery",
                "org.freedesktop.DBus.Error.AccessDenied",
            )
            .expect("fault");
        control
            .set_fault(
                "hci0",
                "RegisterAdvertisement",
                "org.bluez.Error.NotPermitted",
            )
            .expect("fault");
    }
    isolated(
        "permission_denied_is_reported",
        Bus::Bluez(setup),
        |_| async move {
            let report = diagnose(&AdapterChoice::Default).await;
            assert!(
                matches!(report.problem, Some(BleError::PermissionDenied { .. })),
                "{report:?}"
            );
            assert!(report.to_string().contains("permission"), "{report}");
            let scanner = open_scanner().await;
            assert!(matches!(
                scanner.start_scan().await,
                Err(BleError::PermissionDenied { .. })
            ));
            let advertiser = BluezAdvertiser::open(&AdapterChoice::Default)
                .await
                .expect("open advertiser");
            assert!(matches!(
                advertiser.start_advertising([0; 20]).await,
                Err(BleError::PermissionDenied { .. })
            ));
        },
    );
}

#[test]
fn adapter_without_le_advertising_is_reported() {
    fn setup(control: &MockControl) {
        hci0(control);
        control.disable_advertising("hci0").expect("disable");
    }
    isolated(
        "adapter_without_le_advertising_is_reported",
        Bus::Bluez(setup),
        |_| async move {
            match BluezAdvertiser::open(&AdapterChoice::Default).await {
                Err(BleError::AdvertisingNotSupported { adapter }) => assert_eq!(adapter, "hci0"),
                other => panic!("expected AdvertisingNotSupported, got {other:?}"),
            }
            // Scanning does not need it.
            let report = diagnose(&AdapterChoice::Default).await;
            assert!(report.is_ready(), "{report}");
        },
    );
}

#[test]
fn adapter_is_chosen_by_name_or_address() {
    fn setup(control: &MockControl) {
        hci0(control);
        control.add_adapter("hci1").expect("hci1");
        control
            .add_le_device("hci0", "C0:00:00:00:00:10", &[(FIDO.uuid(), payload(10))])
            .expect("device on hci0");
        control
            .add_le_device("hci1", "C0:00:00:00:00:11", &[(FIDO.uuid(), payload(11))])
            .expect("device on hci1");
    }
    isolated(
        "adapter_is_chosen_by_name_or_address",
        Bus::Bluez(setup),
        |_| async move {
            // The mock gives hci1 the address 01:02:03:04:05:06.
            for choice in ["hci1", "01:02:03:04:05:06"] {
                let scanner = BtleplugScanner::open(&AdapterChoice::parse(choice))
                    .await
                    .expect("open");
                assert_eq!(scanner.adapter().name, "hci1");
                let mut scan = scanner.start_scan().await.expect("scan");
                assert_eq!(next(&mut scan).await.payload().to_vec(), payload(11));
                scan.stop().await;
            }
            match BtleplugScanner::open(&AdapterChoice::parse("hci9")).await {
                Err(BleError::AdapterNotFound { wanted, available }) => {
                    assert_eq!(wanted, "hci9");
                    assert_eq!(available, ["hci0", "hci1"]);
                }
                other => panic!("expected AdapterNotFound, got {other:?}"),
            }
        },
    );
}

#[test]
fn dropping_the_stream_stops_discovery() {
    isolated(
        "dropping_the_stream_stops_discovery",
        Bus::Bluez(hci0),
        |control| async move {
            let control = control.expect("control");
            let scan = open_scanner().await.start_scan().await.expect("scan");
            assert!(control.is_discovering("hci0").expect("state"));
            drop(scan);
            wait_until("discovery stopped", || {
                !control.is_discovering("hci0").expect("state")
            })
            .await;
        },
    );
}

#[test]
fn a_new_scan_right_after_a_dropped_one_keeps_discovering() {
    isolated(
        "a_new_scan_right_after_a_dropped_one_keeps_discovering",
        Bus::Bluez(hci0),
        |control| async move {
            let control = control.expect("control");
            let scanner = open_scanner().await;
            for round in 0..3u8 {
                let scan = scanner.start_scan().await.expect("scan");
                // Dropped, not stopped: its scan ends in the background.
                drop(scan);
                let mut scan = scanner.start_scan().await.expect("restart");
                let address = format!("C0:00:00:00:01:{round:02X}");
                control
                    .add_le_device("hci0", &address, &[(FIDO.uuid(), payload(round))])
                    .expect("device");
                // The first scan's stop must not have ended the second one.
                let advert = loop {
                    let advert = next(&mut scan).await;
                    if advert.peer_address.as_deref() == Some(address.as_str()) {
                        break advert;
                    }
                };
                assert_eq!(advert.payload().to_vec(), payload(round));
                assert!(control.is_discovering("hci0").expect("state"));
                scan.stop().await;
                assert!(!control.is_discovering("hci0").expect("state"));
            }
        },
    );
}

#[test]
fn advertiser_registers_a_broadcast_advert_that_scanners_see() {
    isolated(
        "advertiser_registers_a_broadcast_advert_that_scanners_see",
        Bus::Bluez(hci0),
        |control| async move {
            let control = control.expect("control");
            let advertiser = BluezAdvertiser::open(&AdapterChoice::Default)
                .await
                .expect("open advertiser");
            let mut data = [0u8; 20];
            data.copy_from_slice(&payload(42));
            let guard = advertiser.start_advertising(data).await.expect("advertise");

            let adverts = control.advertisements("hci0").expect("list");
            assert_eq!(adverts.len(), 1, "{adverts:?}");
            assert_eq!(adverts[0].kind, "broadcast");
            assert_eq!(
                adverts[0].service_data.get(&FIDO.uuid().to_string()),
                Some(&payload(42))
            );
            // Nothing that would not fit a legacy advertising PDU (no name, no TX power).
            assert_eq!(
                adverts[0].properties,
                [
                    "Includes",
                    "MaxInterval",
                    "MinInterval",
                    "ServiceData",
                    "ServiceUUIDs",
                    "Type"
                ]
            );

            // The mock puts it on the air; it repeats until withdrawn.
            let mut scan = open_scanner().await.start_scan().await.expect("scan");
            for _ in 0..3 {
                let advert = next(&mut scan).await;
                assert_eq!(advert.service(), FIDO);
                assert_eq!(advert.payload(), data);
            }
            scan.stop().await;

            guard.stop().await.expect("unregister");
            assert!(control.advertisements("hci0").expect("list").is_empty());
        },
    );
}

#[test]
fn dropping_the_guard_unregisters_the_advert() {
    isolated(
        "dropping_the_guard_unregisters_the_advert",
        Bus::Bluez(hci0),
        |control| async move {
            let control = control.expect("control");
            let advertiser = BluezAdvertiser::open(&AdapterChoice::Default)
                .await
                .expect("open advertiser");
            let first = advertiser.start_advertising([1; 20]).await.expect("first");
            let second = advertiser.start_advertising([2; 20]).await.expect("second");
            assert_eq!(control.advertisements("hci0").expect("list").len(), 2);
            drop(first);
            wait_until("one advert left", || {
                control.advertisements("hci0").expect("list").len() == 1
            })
            .await;
            let owner = control.advertisements("hci0").expect("list")[0]
                .owner
                .clone();
            drop(second);
            wait_until("no advert left", || {
                control.advertisements("hci0").expect("list").is_empty()
            })
            .await;
            // With the advertiser gone too, its D-Bus connection closes.
            assert!(control.has_owner(&owner).expect("owner"));
            drop(advertiser);
            wait_until("connection closed", || {
                !control.has_owner(&owner).expect("owner")
            })
            .await;
        },
    );
}

const PHONE_PAYLOAD: [u8; 20] = [0x5a; 20];

/// Phone and computer in two processes on one mock bus, as the CLI end-to-end test runs them.
#[test]
fn advert_from_one_process_reaches_a_scanner_in_another() {
    if std::env::var(testing::CHILD_ENV).is_ok() {
        return;
    }
    let mock = MockBluez::start().expect("mock");
    hci0(&mock.control().expect("control"));
    let mut phone = testing::test_child_command("cross_process_phone", mock.bus_address())
        .expect("command")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn phone");
    // The phone says when its advert is registered.
    let mut phone_out = BufReader::new(phone.stdout.take().expect("stdout"));
    let mut seen = String::new();
    while !seen.contains("advertising") {
        let mut line = String::new();
        if phone_out.read_line(&mut line).expect("read") == 0 {
            let mut err = String::new();
            let _ = phone
                .stderr
                .take()
                .expect("stderr")
                .read_to_string(&mut err);
            panic!("phone exited early:\n{seen}\n{err}\n{}", mock.log());
        }
        seen.push_str(&line);
    }
    let computer =
        testing::run_test_in_child("cross_process_computer", mock.bus_address()).expect("computer");
    // Closing stdin tells the phone to stop advertising.
    drop(phone.stdin.take());
    let phone = phone.wait_with_output().expect("phone");
    let computer_out = String::from_utf8_lossy(&computer.stdout);
    assert!(
        computer.status.success() && computer_out.contains("1 passed"),
        "computer failed:\n{computer_out}\n{}\n{}",
        String::from_utf8_lossy(&computer.stderr),
        mock.log()
    );
    let mut rest = String::new();
    phone_out.read_to_string(&mut rest).expect("read");
    assert!(
        phone.status.success() && rest.contains("1 passed"),
        "phone failed:\n{seen}{rest}\n{}",
        String::from_utf8_lossy(&phone.stderr)
    );
}

#[test]
fn cross_process_phone() {
    if !testing::is_test_child("cross_process_phone") {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let control = MockControl::from_env().expect("control");
        let advertiser = BluezAdvertiser::open(&AdapterChoice::Default)
            .await
            .expect("open advertiser");
        let guard = advertiser
            .start_advertising(PHONE_PAYLOAD)
            .await
            .expect("advertise");
        println!("advertising");
        // Until the parent closes stdin.
        tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new()))
            .await
            .expect("join")
            .expect("stdin");
        guard.stop().await.expect("unregister");
        assert!(control.advertisements("hci0").expect("list").is_empty());
    });
}

#[test]
fn cross_process_computer() {
    if !testing::is_test_child("cross_process_computer") {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let mut scan = open_scanner().await.start_scan().await.expect("scan");
        // The first report creates the device, the next ones are repeats.
        for _ in 0..3 {
            assert_eq!(next(&mut scan).await.payload(), PHONE_PAYLOAD);
        }
        scan.stop().await;
    });
}
