//! The offsets here are written out from `offsetof` on `linux/uhid.h` (6.x), not from the
//! constants of the module, so that a wrong constant cannot agree with itself.

use super::*;

fn u16_at(buf: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([buf[at], buf[at + 1]])
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

fn create2() -> Create2 {
    Create2 {
        name: "cable test key".into(),
        phys: "phys/0".into(),
        uniq: "serial-1".into(),
        bus: BUS_USB,
        vendor: 0x1209,
        product: 0x0001,
        version: 0x0102_0304,
        country: 7,
        descriptor: crate::FIDO_REPORT_DESCRIPTOR.to_vec(),
    }
}

/// Every event the kernel sends, with its request fields set to something non-zero.
fn kernel_events() -> Vec<KernelEvent> {
    vec![
        KernelEvent::Start {
            dev_flags: DEV_NUMBERED_INPUT_REPORTS | 1 << 40,
        },
        KernelEvent::Stop,
        KernelEvent::Open,
        KernelEvent::Close,
        KernelEvent::Output {
            data: (0..65).collect(),
            report_type: ReportType::Output,
        },
        KernelEvent::GetReport {
            id: 0xa1b2_c3d4,
            report_number: 3,
            report_type: ReportType::Feature,
        },
        KernelEvent::SetReport {
            id: 0x0102_0304,
            report_number: 5,
            report_type: ReportType::Input,
            data: vec![9; 17],
        },
    ]
}

fn user_events() -> Vec<UserEvent> {
    vec![
        UserEvent::Create2(create2()),
        UserEvent::Input2 {
            data: (0..64).collect(),
        },
        UserEvent::Destroy,
        UserEvent::GetReportReply {
            id: 0xdead_beef,
            err: EIO,
            data: vec![1, 2, 3],
        },
        UserEvent::SetReportReply {
            id: 0xfeed_f00d,
            err: EIO,
        },
    ]
}

#[test]
fn type_numbers_follow_the_header_enum() {
    assert_eq!(
        [
            UHID_DESTROY,
            UHID_START,
            UHID_STOP,
            UHID_OPEN,
            UHID_CLOSE,
            UHID_OUTPUT,
            UHID_GET_REPORT,
            UHID_GET_REPORT_REPLY,
            UHID_CREATE2,
            UHID_INPUT2,
            UHID_SET_REPORT,
            UHID_SET_REPORT_REPLY,
        ],
        [1, 2, 3, 4, 5, 6, 9, 10, 11, 12, 13, 14]
    );
    assert_eq!(BUS_USB, 3);
    assert_eq!(EVENT_SIZE, 4380);
}

#[test]
fn create2_layout() {
    let bytes = UserEvent::Create2(create2()).encode().expect("fits");
    assert_eq!(bytes.len(), 280 + 34);
    assert_eq!(u32_at(&bytes, 0), 11);
    assert_eq!(&bytes[4..18], b"cable test key");
    assert!(bytes[18..132].iter().all(|&b| b == 0));
    assert_eq!(&bytes[132..138], b"phys/0");
    assert_eq!(&bytes[196..204], b"serial-1");
    assert_eq!(u16_at(&bytes, 260), 34);
    assert_eq!(u16_at(&bytes, 262), 3);
    assert_eq!(u32_at(&bytes, 264), 0x1209);
    assert_eq!(u32_at(&bytes, 268), 0x0001);
    assert_eq!(u32_at(&bytes, 272), 0x0102_0304);
    assert_eq!(u32_at(&bytes, 276), 7);
    assert_eq!(&bytes[280..], &crate::FIDO_REPORT_DESCRIPTOR);
}

#[test]
fn input2_layout() {
    let bytes = UserEvent::Input2 {
        data: (0..64).collect(),
    }
    .encode()
    .expect("fits");
    assert_eq!(bytes.len(), 70);
    assert_eq!(u32_at(&bytes, 0), 12);
    assert_eq!(u16_at(&bytes, 4), 64);
    assert_eq!(bytes[6], 0);
    assert_eq!(bytes[69], 63);
}

#[test]
fn destroy_and_reply_layouts() {
    assert_eq!(
        UserEvent::Destroy.encode().expect("fits"),
        1u32.to_ne_bytes()
    );

    let get = UserEvent::GetReportReply {
        id: 0xdead_beef,
        err: 5,
        data: vec![0xaa, 0xbb],
    }
    .encode()
    .expect("fits");
    assert_eq!(get.len(), 14);
    assert_eq!(u32_at(&get, 0), 10);
    assert_eq!(u32_at(&get, 4), 0xdead_beef);
    assert_eq!(u16_at(&get, 8), 5);
    assert_eq!(u16_at(&get, 10), 2);
    assert_eq!(&get[12..], [0xaa, 0xbb]);

    let set = UserEvent::SetReportReply {
        id: 0xfeed_f00d,
        err: 5,
    }
    .encode()
    .expect("fits");
    assert_eq!(set.len(), 10);
    assert_eq!(u32_at(&set, 0), 14);
    assert_eq!(u32_at(&set, 4), 0xfeed_f00d);
    assert_eq!(u16_at(&set, 8), 5);
}

/// A kernel event built byte by byte at the header's offsets.
fn raw(ty: u32, fields: &[(usize, &[u8])]) -> Vec<u8> {
    let mut buf = vec![0u8; 4380];
    buf[..4].copy_from_slice(&ty.to_ne_bytes());
    for (at, bytes) in fields {
        buf[*at..*at + bytes.len()].copy_from_slice(bytes);
    }
    buf
}

#[test]
fn kernel_events_at_the_header_offsets() {
    let flags = 0x0000_0100_0000_0004u64.to_ne_bytes();
    assert_eq!(
        KernelEvent::decode(&raw(2, &[(4, &flags)])),
        Ok(KernelEvent::Start {
            dev_flags: 0x0000_0100_0000_0004
        })
    );
    for (ty, event) in [
        (3, KernelEvent::Stop),
        (4, KernelEvent::Open),
        (5, KernelEvent::Close),
    ] {
        assert_eq!(KernelEvent::decode(&raw(ty, &[])), Ok(event.clone()));
        // These carry nothing but their type.
        assert_eq!(KernelEvent::decode(&ty.to_ne_bytes()), Ok(event));
    }

    let report: Vec<u8> = (0..65).collect();
    let output = raw(
        6,
        &[(4, &report), (4100, &65u16.to_ne_bytes()), (4102, &[1])],
    );
    assert_eq!(
        KernelEvent::decode(&output),
        Ok(KernelEvent::Output {
            data: report,
            report_type: ReportType::Output
        })
    );

    let get = raw(
        9,
        &[(4, &0xa1b2_c3d4u32.to_ne_bytes()), (8, &[3]), (9, &[0])],
    );
    assert_eq!(
        KernelEvent::decode(&get),
        Ok(KernelEvent::GetReport {
            id: 0xa1b2_c3d4,
            report_number: 3,
            report_type: ReportType::Feature
        })
    );

    let set = raw(
        13,
        &[
            (4, &7u32.to_ne_bytes()),
            (8, &[5]),
            (9, &[2]),
            (10, &3u16.to_ne_bytes()),
            (12, &[4, 5, 6]),
        ],
    );
    assert_eq!(
        KernelEvent::decode(&set),
        Ok(KernelEvent::SetReport {
            id: 7,
            report_number: 5,
            report_type: ReportType::Input,
            data: vec![4, 5, 6]
        })
    );
}

#[test]
fn kernel_events_round_trip_at_full_size() {
    for event in kernel_events() {
        let bytes = event.encode();
        assert_eq!(bytes.len(), EVENT_SIZE, "{event:?}");
        assert_eq!(KernelEvent::decode(&bytes), Ok(event));
    }
}

#[test]
fn user_events_round_trip_short_and_padded() {
    for event in user_events() {
        let mut bytes = event.encode().expect("fits");
        assert_eq!(UserEvent::decode(&bytes), Ok(event.clone()));
        bytes.resize(EVENT_SIZE, 0);
        assert_eq!(UserEvent::decode(&bytes), Ok(event));
    }
}

#[test]
fn every_truncation_of_every_kernel_event_is_an_error() {
    for event in kernel_events() {
        let bytes = event.encode();
        let needed = match event {
            KernelEvent::Start { .. } => 12,
            KernelEvent::Stop | KernelEvent::Open | KernelEvent::Close => 4,
            KernelEvent::Output { .. } => 4103,
            KernelEvent::GetReport { .. } => 10,
            KernelEvent::SetReport { .. } => 4108,
        };
        assert!(KernelEvent::decode(&bytes[..needed]).is_ok(), "{event:?}");
        for len in 0..needed {
            let err = KernelEvent::decode(&bytes[..len]).expect_err("truncated");
            let DecodeError::Truncated {
                event_type,
                needed: n,
                got,
            } = err
            else {
                panic!("{event:?} cut to {len}: {err:?}");
            };
            assert_eq!(got, len);
            if len < 4 {
                assert_eq!((event_type, n), (None, 4));
            } else {
                assert_eq!(n, needed);
                assert_eq!(
                    event_type,
                    u32::from_ne_bytes(bytes[..4].try_into().expect("4")).into()
                );
            }
        }
    }
}

#[test]
fn every_truncation_of_every_user_event_is_an_error() {
    for event in user_events() {
        let bytes = event.encode().expect("fits");
        for len in 0..bytes.len() {
            assert!(
                matches!(
                    UserEvent::decode(&bytes[..len]),
                    Err(DecodeError::Truncated { got, .. }) if got == len
                ),
                "{event:?} cut to {len}"
            );
        }
    }
}

#[test]
fn unknown_and_misdirected_types() {
    for ty in [15, 16, 0x8000_0000, u32::MAX] {
        assert_eq!(
            KernelEvent::decode(&raw(ty, &[])),
            Err(DecodeError::UnknownType(ty))
        );
        assert_eq!(
            UserEvent::decode(&raw(ty, &[])),
            Err(DecodeError::UnknownType(ty))
        );
    }
    for ty in [0, 1, 7, 8, 10, 11, 12, 14] {
        assert_eq!(
            KernelEvent::decode(&raw(ty, &[])),
            Err(DecodeError::WrongDirection(ty))
        );
    }
    for ty in [0, 2, 3, 4, 5, 6, 7, 8, 9, 13] {
        assert_eq!(
            UserEvent::decode(&raw(ty, &[])),
            Err(DecodeError::WrongDirection(ty))
        );
    }
}

#[test]
fn bad_sizes_and_report_types() {
    let output = raw(6, &[(4100, &4097u16.to_ne_bytes()), (4102, &[1])]);
    assert_eq!(
        KernelEvent::decode(&output),
        Err(DecodeError::SizeTooLarge {
            event_type: 6,
            size: 4097,
            max: 4096
        })
    );
    let set = raw(13, &[(10, &u16::MAX.to_ne_bytes())]);
    assert!(matches!(
        KernelEvent::decode(&set),
        Err(DecodeError::SizeTooLarge { size: 65535, .. })
    ));
    assert_eq!(
        KernelEvent::decode(&raw(6, &[(4102, &[3])])),
        Err(DecodeError::UnknownReportType(3))
    );
    assert_eq!(
        KernelEvent::decode(&raw(9, &[(9, &[0xff])])),
        Err(DecodeError::UnknownReportType(0xff))
    );
    // An OUTPUT of the largest size is fine.
    let full = raw(6, &[(4100, &4096u16.to_ne_bytes()), (4102, &[1])]);
    assert!(
        matches!(KernelEvent::decode(&full), Ok(KernelEvent::Output { data, .. }) if data.len() == 4096)
    );

    let mut create = UserEvent::Create2(create2()).encode().expect("fits");
    create[260..262].copy_from_slice(&0u16.to_ne_bytes());
    assert_eq!(
        UserEvent::decode(&create),
        Err(DecodeError::EmptyDescriptor)
    );
    create[260..262].copy_from_slice(&4097u16.to_ne_bytes());
    assert!(matches!(
        UserEvent::decode(&create),
        Err(DecodeError::SizeTooLarge { size: 4097, .. })
    ));
    let mut create = UserEvent::Create2(create2()).encode().expect("fits");
    create[4..132].fill(b'a');
    assert_eq!(
        UserEvent::decode(&create),
        Err(DecodeError::BadString("name"))
    );
    let mut create = UserEvent::Create2(create2()).encode().expect("fits");
    create[132] = 0xff;
    assert_eq!(
        UserEvent::decode(&create),
        Err(DecodeError::BadString("phys"))
    );
}

#[test]
fn encode_refuses_what_the_kernel_would_cut_or_refuse() {
    let with = |f: fn(&mut Create2)| {
        let mut c = create2();
        f(&mut c);
        UserEvent::Create2(c).encode()
    };
    assert!(with(|c| c.name = "n".repeat(127)).is_ok());
    assert_eq!(
        with(|c| c.name = "n".repeat(128)),
        Err(EncodeError::StringTooLong {
            field: "name",
            len: 128,
            max: 127
        })
    );
    assert!(matches!(
        with(|c| c.phys = "p".repeat(64)),
        Err(EncodeError::StringTooLong { field: "phys", .. })
    ));
    assert!(matches!(
        with(|c| c.uniq = "u".repeat(64)),
        Err(EncodeError::StringTooLong { field: "uniq", .. })
    ));
    assert_eq!(
        with(|c| c.name = "a\0b".into()),
        Err(EncodeError::Nul("name"))
    );
    assert_eq!(
        with(|c| c.descriptor.clear()),
        Err(EncodeError::DescriptorLen(0))
    );
    assert_eq!(
        with(|c| c.descriptor = vec![0; 4097]),
        Err(EncodeError::DescriptorLen(4097))
    );
    assert!(with(|c| c.descriptor = vec![0; 4096]).is_ok());
    assert_eq!(
        UserEvent::Input2 {
            data: vec![0; 4097]
        }
        .encode(),
        Err(EncodeError::DataTooLong(4097))
    );
    assert_eq!(
        UserEvent::GetReportReply {
            id: 0,
            err: 0,
            data: vec![0; 4097]
        }
        .encode(),
        Err(EncodeError::DataTooLong(4097))
    );
}

#[test]
fn report_descriptor_bytes() {
    // CTAP 2.2 §11.2.8.1, byte for byte.
    assert_eq!(
        crate::FIDO_REPORT_DESCRIPTOR,
        [
            0x06, 0xd0, 0xf1, 0x09, 0x01, 0xa1, 0x01, 0x09, 0x20, 0x15, 0x00, 0x26, 0xff, 0x00,
            0x75, 0x08, 0x95, 0x40, 0x81, 0x02, 0x09, 0x21, 0x15, 0x00, 0x26, 0xff, 0x00, 0x75,
            0x08, 0x95, 0x40, 0x91, 0x02, 0xc0,
        ]
    );
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..4400)) {
            let _ = KernelEvent::decode(&bytes);
            let _ = UserEvent::decode(&bytes);
        }

        #[test]
        fn decoding_any_type_and_payload_never_panics(
            ty in 0u32..20,
            fill in any::<u8>(),
            len in 0usize..4400,
        ) {
            let mut bytes = vec![fill; len.max(4)];
            bytes[..4].copy_from_slice(&ty.to_ne_bytes());
            bytes.truncate(len);
            let _ = KernelEvent::decode(&bytes);
            let _ = UserEvent::decode(&bytes);
        }
    }
}
