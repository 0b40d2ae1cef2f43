//! The HID report descriptor of a FIDO authenticator.

/// The report descriptor of CTAP 2.2 §11.2.8.1 ("HID report descriptor and device
/// discovery"): usage page 0xF1D0 (FIDO Alliance), usage 0x01 (CTAPHID), one 64-byte
/// input report (usage 0x20, data in) and one 64-byte output report (usage 0x21, data
/// out), no report IDs. Hosts find FIDO keys by this usage page and usage, whatever the
/// vendor and product.
pub const FIDO_REPORT_DESCRIPTOR: [u8; 34] = [
    0x06, 0xd0, 0xf1, // Usage Page (FIDO Alliance, 0xF1D0)
    0x09, 0x01, // Usage (CTAPHID)
    0xa1, 0x01, // Collection (Application)
    0x09, 0x20, //   Usage (Input Report Data)
    0x15, 0x00, //   Logical Minimum (0)
    0x26, 0xff, 0x00, //   Logical Maximum (255)
    0x75, 0x08, //   Report Size (8 bits)
    0x95, 0x40, //   Report Count (64)
    0x81, 0x02, //   Input (Data, Variable, Absolute)
    0x09, 0x21, //   Usage (Output Report Data)
    0x15, 0x00, //   Logical Minimum (0)
    0x26, 0xff, 0x00, //   Logical Maximum (255)
    0x75, 0x08, //   Report Size (8 bits)
    0x95, 0x40, //   Report Count (64)
    0x91, 0x02, //   Output (Data, Variable, Absolute)
    0xc0, // End Collection
];
