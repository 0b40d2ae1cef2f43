//! PROXY protocol headers (HAProxy's specification, versions 1 and 2), parsed from bytes.
//!
//! A balancer that passes TCP connections on (HAProxy `send-proxy-v2`, nginx's stream module
//! `proxy_protocol on`) writes one header before the client's first byte, naming the client's
//! address. This module only looks at bytes: [`parse`] says either how many more bytes to
//! read or what the header held and how long it was. The caller reads no more than it is
//! told, so the TLS or HTTP bytes after the header stay in the socket for the next layer,
//! and no buffer has to be handed on.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The 12 bytes every version 2 header starts with.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// Longest version 1 line, `\r\n` included (from the specification).
pub const V1_MAX_LEN: usize = 107;

/// Longest version 2 address and TLV block accepted. The specification allows 65535 bytes;
/// balancers send a few dozen (addresses) to a few hundred (TLVs with TLS details), and a
/// bigger one would only cost memory on a connection that has not proved anything yet.
pub const V2_MAX_PAYLOAD: usize = 1024;

/// Shortest valid header of either version (`PROXY UNKNOWN\r\n`), which is therefore safe
/// to read before knowing which version follows.
const MIN_HEADER_LEN: usize = 15;

const V1_PREFIX: &[u8] = b"PROXY ";
const V2_FIXED_LEN: usize = 16;

/// What a complete header said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyHeader {
    /// The balancer relays a client connection from `source` to `destination`.
    Proxied {
        /// The client's address and port.
        source: SocketAddr,
        /// The address the client connected to.
        destination: SocketAddr,
    },
    /// The balancer speaks for itself (version 2 `LOCAL`, e.g. a health check): the socket's
    /// own peer address is the client.
    Local,
    /// The balancer does not know the client's address (version 1 `UNKNOWN`, version 2
    /// `UNSPEC` or `AF_UNIX`): the socket's peer address stands in for it.
    Unknown,
}

impl ProxyHeader {
    /// The client's address, if the header names one.
    pub fn source(&self) -> Option<IpAddr> {
        match self {
            Self::Proxied { source, .. } => Some(source.ip()),
            Self::Local | Self::Unknown => None,
        }
    }
}

/// Where parsing stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Incomplete: read at most this many more bytes (at least 1). Every valid header that
    /// starts with the bytes seen so far is at least this much longer, so reading that much
    /// never consumes a byte that follows the header.
    Need(usize),
    /// Complete: the header, and its length in bytes (what follows belongs to the client).
    Done(ProxyHeader, usize),
}

/// Why bytes are not a PROXY header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProxyHeaderError {
    /// Neither `PROXY ` nor the version 2 signature: the peer sent no header at all.
    #[error("no PROXY protocol header (bad signature)")]
    BadSignature,
    /// A version 1 line without `\r\n` within 107 bytes.
    #[error("PROXY v1 line longer than {V1_MAX_LEN} bytes")]
    V1TooLong,
    /// A version 1 line with a byte that is not printable ASCII, or a lone CR or LF.
    #[error("PROXY v1 line with a control or non-ASCII byte")]
    V1BadByte,
    /// A version 1 protocol other than `TCP4`, `TCP6` or `UNKNOWN`.
    #[error("PROXY v1 protocol is not TCP4, TCP6 or UNKNOWN")]
    V1BadProtocol,
    /// A version 1 line without exactly four fields after `TCP4`/`TCP6`.
    #[error("PROXY v1 line does not have two addresses and two ports")]
    V1BadFields,
    /// A version 1 address that is not one of the protocol's family.
    #[error("PROXY v1 address is not a valid address of its protocol")]
    V1BadAddress,
    /// A version 1 port that is not a decimal number up to 65535.
    #[error("PROXY v1 port is not a number from 0 to 65535")]
    V1BadPort,
    /// A version 2 header whose version nibble is not 2.
    #[error("PROXY v2 header with version {0}")]
    V2BadVersion(u8),
    /// A version 2 command other than `LOCAL` (0) or `PROXY` (1).
    #[error("PROXY v2 header with unknown command {0}")]
    V2BadCommand(u8),
    /// A version 2 address family other than `UNSPEC`, `INET`, `INET6` or `UNIX`.
    #[error("PROXY v2 header with unknown address family {0}")]
    V2BadFamily(u8),
    /// A version 2 transport other than `STREAM` for an IP family (the relay serves TCP only).
    #[error("PROXY v2 header with transport {0}, not a stream")]
    V2BadTransport(u8),
    /// A version 2 length shorter than its family's addresses.
    #[error("PROXY v2 length {len} is shorter than the {need} bytes of its addresses")]
    V2ShortAddresses {
        /// The header's length field.
        len: usize,
        /// What the family needs.
        need: usize,
    },
    /// A version 2 length above [`V2_MAX_PAYLOAD`].
    #[error("PROXY v2 length {0} over the limit of {V2_MAX_PAYLOAD}")]
    V2TooLong(usize),
}

/// Parses the header at the start of `buf`. Start with an empty buffer and follow
/// [`Progress::Need`]; bytes in `buf` past a complete header are not looked at.
pub fn parse(buf: &[u8]) -> Result<Progress, ProxyHeaderError> {
    match buf.first() {
        None => Ok(Progress::Need(MIN_HEADER_LEN)),
        Some(b'P') => parse_v1(buf),
        Some(b'\r') => parse_v2(buf),
        Some(_) => Err(ProxyHeaderError::BadSignature),
    }
}

fn parse_v2(buf: &[u8]) -> Result<Progress, ProxyHeaderError> {
    let seen = buf.len().min(V2_SIGNATURE.len());
    if buf[..seen] != V2_SIGNATURE[..seen] {
        return Err(ProxyHeaderError::BadSignature);
    }
    let Some(fixed) = buf.get(..V2_FIXED_LEN) else {
        return Ok(Progress::Need(V2_FIXED_LEN - buf.len()));
    };
    let (version, command) = (fixed[12] >> 4, fixed[12] & 0x0f);
    let (family, transport) = (fixed[13] >> 4, fixed[13] & 0x0f);
    let len = usize::from(u16::from_be_bytes([fixed[14], fixed[15]]));
    if version != 2 {
        return Err(ProxyHeaderError::V2BadVersion(version));
    }
    if command > 1 {
        return Err(ProxyHeaderError::V2BadCommand(command));
    }
    if family > 3 {
        return Err(ProxyHeaderError::V2BadFamily(family));
    }
    if transport > 2 {
        return Err(ProxyHeaderError::V2BadTransport(transport));
    }
    if len > V2_MAX_PAYLOAD {
        return Err(ProxyHeaderError::V2TooLong(len));
    }
    let total = V2_FIXED_LEN + len;
    let Some(payload) = buf.get(V2_FIXED_LEN..total) else {
        return Ok(Progress::Need(total - buf.len()));
    };
    // LOCAL: the specification has the receiver ignore the family and the addresses.
    if command == 0 {
        return Ok(Progress::Done(ProxyHeader::Local, total));
    }
    let need = match family {
        1 => 12,
        2 => 36,
        // UNSPEC and AF_UNIX carry no IP address to key anything on.
        _ => return Ok(Progress::Done(ProxyHeader::Unknown, total)),
    };
    if transport != 1 {
        return Err(ProxyHeaderError::V2BadTransport(transport));
    }
    if len < need {
        return Err(ProxyHeaderError::V2ShortAddresses { len, need });
    }
    let port = |at: usize| u16::from_be_bytes([payload[at], payload[at + 1]]);
    let (source, destination) = if family == 1 {
        let ip = |at: usize| {
            IpAddr::V4(Ipv4Addr::new(
                payload[at],
                payload[at + 1],
                payload[at + 2],
                payload[at + 3],
            ))
        };
        (
            SocketAddr::new(ip(0), port(8)),
            SocketAddr::new(ip(4), port(10)),
        )
    } else {
        let ip = |at: usize| {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&payload[at..at + 16]);
            IpAddr::V6(Ipv6Addr::from(octets))
        };
        (
            SocketAddr::new(ip(0), port(32)),
            SocketAddr::new(ip(16), port(34)),
        )
    };
    // Whatever follows the addresses within `len` is TLVs, which the relay has no use for.
    Ok(Progress::Done(
        ProxyHeader::Proxied {
            source,
            destination,
        },
        total,
    ))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum V1Protocol {
    Tcp4,
    Tcp6,
    Unknown,
}

impl V1Protocol {
    fn from_bytes(name: &[u8]) -> Option<Self> {
        match name {
            b"TCP4" => Some(Self::Tcp4),
            b"TCP6" => Some(Self::Tcp6),
            b"UNKNOWN" => Some(Self::Unknown),
            _ => None,
        }
    }

    /// Shortest text of each of the four fields after the protocol.
    fn min_field_lens(self) -> [usize; 4] {
        match self {
            // `1.1.1.1`
            Self::Tcp4 => [7, 7, 1, 1],
            // `::`
            Self::Tcp6 => [2, 2, 1, 1],
            Self::Unknown => [0; 4],
        }
    }
}

fn parse_v1(buf: &[u8]) -> Result<Progress, ProxyHeaderError> {
    let seen = buf.len().min(V1_PREFIX.len());
    if buf[..seen] != V1_PREFIX[..seen] {
        return Err(ProxyHeaderError::BadSignature);
    }
    let window = &buf[..buf.len().min(V1_MAX_LEN)];
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        if buf.len() >= V1_MAX_LEN {
            return Err(ProxyHeaderError::V1TooLong);
        }
        check_v1_bytes(window)?;
        let need = v1_min_len(window)?.saturating_sub(window.len()).max(1);
        return Ok(Progress::Need(need.min(V1_MAX_LEN - window.len())));
    };
    let line = match window[..lf].strip_suffix(b"\r") {
        Some(line) => line,
        None => return Err(ProxyHeaderError::V1BadByte),
    };
    check_v1_bytes(line)?;
    if line.contains(&b'\r') {
        return Err(ProxyHeaderError::V1BadByte);
    }
    Ok(Progress::Done(parse_v1_line(line)?, lf + 1))
}

/// Printable ASCII, except that the last byte seen may be the line's CR.
fn check_v1_bytes(text: &[u8]) -> Result<(), ProxyHeaderError> {
    let body = text.strip_suffix(b"\r").unwrap_or(text);
    if body.iter().all(|b| (0x20..0x7f).contains(b)) {
        Ok(())
    } else {
        Err(ProxyHeaderError::V1BadByte)
    }
}

/// Lower bound on the total length of any valid line that starts with `partial` (which has
/// no LF yet), so that the caller can read that much without passing the line's end.
fn v1_min_len(partial: &[u8]) -> Result<usize, ProxyHeaderError> {
    if partial.ends_with(b"\r") {
        return Ok(partial.len() + 1);
    }
    let Some(rest) = partial.get(V1_PREFIX.len()..) else {
        return Ok(MIN_HEADER_LEN);
    };
    let name = rest.split(|&b| b == b' ').next().unwrap_or_default();
    let Some(after_name) = rest.get(name.len()..).filter(|r| !r.is_empty()) else {
        // The protocol is still being read: it must be a prefix of one of the three.
        let known = [&b"TCP4"[..], b"TCP6", b"UNKNOWN"]
            .iter()
            .any(|p| p.starts_with(name));
        if !known {
            return Err(ProxyHeaderError::V1BadProtocol);
        }
        return Ok(MIN_HEADER_LEN.max(partial.len() + 2));
    };
    let protocol = V1Protocol::from_bytes(name).ok_or(ProxyHeaderError::V1BadProtocol)?;
    if protocol == V1Protocol::Unknown {
        // Anything may follow UNKNOWN up to the line's end.
        return Ok(partial.len() + 2);
    }
    // `after_name` starts with the space before the first field.
    let seen: Vec<&[u8]> = after_name[1..].split(|&b| b == b' ').collect();
    if seen.len() > 4 {
        return Err(ProxyHeaderError::V1BadFields);
    }
    let mut len = V1_PREFIX.len() + name.len();
    for (i, min) in protocol.min_field_lens().into_iter().enumerate() {
        let field = seen.get(i).map_or(0, |f| f.len());
        // Fields before the last one seen are complete; the last may still grow.
        let field = if i + 1 < seen.len() {
            field
        } else {
            field.max(min)
        };
        len += 1 + field;
    }
    Ok(len + 2)
}

fn parse_v1_line(line: &[u8]) -> Result<ProxyHeader, ProxyHeaderError> {
    let rest = line
        .strip_prefix(V1_PREFIX)
        .ok_or(ProxyHeaderError::BadSignature)?;
    let mut fields = rest.split(|&b| b == b' ');
    let name = fields.next().unwrap_or_default();
    let protocol = V1Protocol::from_bytes(name).ok_or(ProxyHeaderError::V1BadProtocol)?;
    if protocol == V1Protocol::Unknown {
        // The specification has the receiver ignore everything after UNKNOWN.
        return Ok(ProxyHeader::Unknown);
    }
    let fields: Vec<&[u8]> = fields.collect();
    let [src, dst, sport, dport] = fields[..] else {
        return Err(ProxyHeaderError::V1BadFields);
    };
    let ip = |text: &[u8]| -> Result<IpAddr, ProxyHeaderError> {
        let text = std::str::from_utf8(text).map_err(|_| ProxyHeaderError::V1BadAddress)?;
        match protocol {
            V1Protocol::Tcp4 => text.parse::<Ipv4Addr>().map(IpAddr::V4),
            _ => text.parse::<Ipv6Addr>().map(IpAddr::V6),
        }
        .map_err(|_| ProxyHeaderError::V1BadAddress)
    };
    let port = |text: &[u8]| -> Result<u16, ProxyHeaderError> {
        // `u16::from_str` would also take a leading `+`.
        if text.is_empty() || text.len() > 5 || !text.iter().all(u8::is_ascii_digit) {
            return Err(ProxyHeaderError::V1BadPort);
        }
        std::str::from_utf8(text)
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or(ProxyHeaderError::V1BadPort)
    };
    Ok(ProxyHeader::Proxied {
        source: SocketAddr::new(ip(src)?, port(sport)?),
        destination: SocketAddr::new(ip(dst)?, port(dport)?),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Feeds `bytes` the way the relay reads a socket: never more than asked for.
    fn feed(bytes: &[u8]) -> Result<(ProxyHeader, usize), ProxyHeaderError> {
        let mut buf = Vec::new();
        loop {
            match parse(&buf)? {
                Progress::Done(header, len) => {
                    assert_eq!(len, buf.len(), "read past the header");
                    return Ok((header, len));
                }
                Progress::Need(n) => {
                    assert!(n >= 1);
                    let end = (buf.len() + n).min(bytes.len());
                    assert!(
                        end > buf.len(),
                        "ran out of input after {} bytes",
                        buf.len()
                    );
                    buf.extend_from_slice(&bytes[buf.len()..end]);
                }
            }
        }
    }

    fn v2(command: u8, family: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = V2_SIGNATURE.to_vec();
        out.push(0x20 | command);
        out.push(family);
        out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    fn v4_payload() -> Vec<u8> {
        let mut p = vec![192, 0, 2, 7, 10, 0, 0, 1];
        p.extend_from_slice(&51234u16.to_be_bytes());
        p.extend_from_slice(&443u16.to_be_bytes());
        p
    }

    fn sa(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn v1_tcp4_and_tcp6_leave_what_follows() {
        for (line, source, destination) in [
            (
                "PROXY TCP4 192.0.2.7 10.0.0.1 51234 443\r\n",
                "192.0.2.7:51234",
                "10.0.0.1:443",
            ),
            (
                "PROXY TCP4 1.1.1.1 2.2.2.2 1 2\r\n",
                "1.1.1.1:1",
                "2.2.2.2:2",
            ),
            (
                "PROXY TCP6 2001:db8::1 :: 65535 0\r\n",
                "[2001:db8::1]:65535",
                "[::]:0",
            ),
            (
                "PROXY TCP6 ::ffff:192.0.2.1 2001:db8:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
                "[::ffff:192.0.2.1]:65535",
                "[2001:db8:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
            ),
        ] {
            let mut bytes = line.as_bytes().to_vec();
            bytes.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
            let expected = ProxyHeader::Proxied {
                source: sa(source),
                destination: sa(destination),
            };
            assert_eq!(feed(&bytes), Ok((expected, line.len())), "{line}");
            // All at once, the length still stops at the line's end.
            assert_eq!(
                parse(&bytes),
                Ok(Progress::Done(expected, line.len())),
                "{line}"
            );
        }
    }

    #[test]
    fn v1_longest_line_fits() {
        let line = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
        assert_eq!(line.len(), 104);
        assert!(matches!(
            feed(line.as_bytes()),
            Ok((ProxyHeader::Proxied { .. }, 104))
        ));
    }

    #[test]
    fn v1_unknown_ignores_the_rest_of_its_line() {
        assert_eq!(
            feed(b"PROXY UNKNOWN\r\n\x16\x03\x01"),
            Ok((ProxyHeader::Unknown, 15))
        );
        let line = b"PROXY UNKNOWN ffff::1 whatever 1 2\r\n";
        assert_eq!(feed(line), Ok((ProxyHeader::Unknown, line.len())));
    }

    #[test]
    fn v1_refusals() {
        use ProxyHeaderError::*;
        for (bytes, expected) in [
            (&b"GET / HTTP/1.1\r\n"[..], BadSignature),
            (b"PROXY  TCP4 1.1.1.1 2.2.2.2 1 2\r\n", V1BadProtocol),
            (b"PROXY TCP5 1.1.1.1 2.2.2.2 1 2\r\n", V1BadProtocol),
            (b"PROXY tcp4 1.1.1.1 2.2.2.2 1 2\r\n", V1BadProtocol),
            (b"PROXY TCP4 1.1.1.1 2.2.2.2 1\r\n", V1BadFields),
            (b"PROXY TCP4 1.1.1.1 2.2.2.2 1 2 3\r\n", V1BadFields),
            (b"PROXY TCP4 1.1.1.1  2.2.2.2 1 2\r\n", V1BadFields),
            (b"PROXY TCP4 ::1 2.2.2.2 1 2\r\n", V1BadAddress),
            (b"PROXY TCP6 1.1.1.1 ::1 1 2\r\n", V1BadAddress),
            (b"PROXY TCP4 1.1.1.256 2.2.2.2 1 2\r\n", V1BadAddress),
            (b"PROXY TCP4 1.1.1.1 2.2.2.2 65536 2\r\n", V1BadPort),
            (b"PROXY TCP4 1.1.1.1 2.2.2.2 +1 2\r\n", V1BadPort),
            (b"PROXY TCP4 1.1.1.1 2.2.2.2 1 -2\r\n", V1BadPort),
            (b"PROXY TCP4 1.1.1.1 2.2.2.2 1 2\n", V1BadByte),
            (b"PROXY TCP4 1.1.1.1 2.2.2.2 1 2\r\r\n", V1BadByte),
            (b"PROXY TCP4 1.1.1.1\t2.2.2.2 1 2\r\n", V1BadByte),
            (b"PROXY TCP4 1.1.1.1 2.2.2.\xc3\xa9 1 2\r\n", V1BadByte),
        ] {
            assert_eq!(
                feed(bytes),
                Err(expected),
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
            assert_eq!(parse(bytes).unwrap_err(), expected);
        }
    }

    #[test]
    fn v1_oversized_line_is_refused_at_the_limit() {
        let mut long = b"PROXY UNKNOWN ".to_vec();
        long.resize(300, b'x');
        assert_eq!(feed(&long), Err(ProxyHeaderError::V1TooLong));
        assert_eq!(parse(&long[..V1_MAX_LEN]), Err(ProxyHeaderError::V1TooLong));
        // One byte short of the limit still waits for its CR LF, but no more than fits.
        assert_eq!(parse(&long[..V1_MAX_LEN - 1]), Ok(Progress::Need(1)));
    }

    #[test]
    fn truncated_headers_ask_for_more() {
        let line = b"PROXY TCP4 192.0.2.7 10.0.0.1 51234 443\r\n";
        for cut in 0..line.len() {
            assert!(
                matches!(parse(&line[..cut]), Ok(Progress::Need(n)) if cut + n <= line.len()),
                "v1 cut at {cut}: {:?}",
                parse(&line[..cut])
            );
        }
        let header = v2(1, 0x11, &v4_payload());
        for cut in 0..header.len() {
            assert!(
                matches!(parse(&header[..cut]), Ok(Progress::Need(n)) if cut + n <= header.len()),
                "v2 cut at {cut}"
            );
        }
    }

    #[test]
    fn v2_inet_and_inet6() {
        let mut header = v2(1, 0x11, &v4_payload());
        header.extend_from_slice(b"\x16\x03\x01 client hello");
        let expected = ProxyHeader::Proxied {
            source: sa("192.0.2.7:51234"),
            destination: sa("10.0.0.1:443"),
        };
        assert_eq!(feed(&header), Ok((expected, 28)));
        assert_eq!(parse(&header), Ok(Progress::Done(expected, 28)));
        assert_eq!(expected.source(), Some("192.0.2.7".parse().unwrap()));

        let src: Ipv6Addr = "2001:db8::7".parse().unwrap();
        let dst: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let mut payload = src.octets().to_vec();
        payload.extend_from_slice(&dst.octets());
        payload.extend_from_slice(&[0xc8, 0x22, 0x01, 0xbb]);
        assert_eq!(
            feed(&v2(1, 0x21, &payload)),
            Ok((
                ProxyHeader::Proxied {
                    source: sa("[2001:db8::7]:51234"),
                    destination: sa("[2001:db8::1]:443"),
                },
                52
            ))
        );
    }

    #[test]
    fn v2_trailing_tlvs_are_skipped() {
        let mut payload = v4_payload();
        // PP2_TYPE_ALPN "http/1.1", PP2_TYPE_UNIQUE_ID, and a NOOP.
        payload.extend_from_slice(&[0x01, 0x00, 0x08]);
        payload.extend_from_slice(b"http/1.1");
        payload.extend_from_slice(&[0x05, 0x00, 0x04, 1, 2, 3, 4, 0x04, 0x00, 0x00]);
        let header = v2(1, 0x11, &payload);
        let (parsed, len) = feed(&header).unwrap();
        assert_eq!(len, header.len());
        assert_eq!(parsed.source(), Some("192.0.2.7".parse().unwrap()));
    }

    #[test]
    fn v2_local_unspec_and_unix() {
        // LOCAL ignores whatever family and addresses it carries.
        assert_eq!(feed(&v2(0, 0x00, &[])), Ok((ProxyHeader::Local, 16)));
        assert_eq!(
            feed(&v2(0, 0x11, &v4_payload())),
            Ok((ProxyHeader::Local, 28))
        );
        assert_eq!(feed(&v2(0, 0x11, &[1, 2])), Ok((ProxyHeader::Local, 18)));
        assert_eq!(feed(&v2(1, 0x00, &[])), Ok((ProxyHeader::Unknown, 16)));
        assert_eq!(
            feed(&v2(1, 0x31, &[0; 216])),
            Ok((ProxyHeader::Unknown, 232))
        );
    }

    #[test]
    fn v2_refusals() {
        use ProxyHeaderError::*;
        let mut bad_signature = v2(1, 0x11, &v4_payload());
        bad_signature[6] = b'X';
        let mut version_1 = v2(1, 0x11, &v4_payload());
        version_1[12] = 0x11;
        for (header, expected) in [
            (bad_signature, BadSignature),
            (version_1, V2BadVersion(1)),
            (v2(2, 0x11, &v4_payload()), V2BadCommand(2)),
            (v2(0xf, 0x11, &v4_payload()), V2BadCommand(15)),
            (v2(1, 0x41, &v4_payload()), V2BadFamily(4)),
            (v2(1, 0xf1, &v4_payload()), V2BadFamily(15)),
            (v2(1, 0x13, &v4_payload()), V2BadTransport(3)),
            (v2(1, 0x12, &v4_payload()), V2BadTransport(2)),
            (v2(1, 0x10, &v4_payload()), V2BadTransport(0)),
            (
                v2(1, 0x11, &v4_payload()[..11]),
                V2ShortAddresses { len: 11, need: 12 },
            ),
            (
                v2(1, 0x21, &v4_payload()),
                V2ShortAddresses { len: 12, need: 36 },
            ),
            (v2(1, 0x11, &[0; V2_MAX_PAYLOAD + 1]), V2TooLong(1025)),
        ] {
            assert_eq!(feed(&header), Err(expected), "{header:02x?}");
        }
        // An oversized length is refused from the fixed part alone, before its payload.
        let mut fixed = V2_SIGNATURE.to_vec();
        fixed.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        assert_eq!(parse(&fixed), Err(V2TooLong(65535)));
    }

    #[test]
    fn other_protocols_are_no_header() {
        for bytes in [
            &b"\x16\x03\x01\x02\x00"[..],
            b"\r\n\r\nGET",
            b"\0",
            b"PRI * HTTP/2.0",
        ] {
            assert_eq!(
                parse(bytes),
                Err(ProxyHeaderError::BadSignature),
                "{bytes:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            match parse(&bytes) {
                Ok(Progress::Done(_, len)) => prop_assert!(len <= bytes.len()),
                Ok(Progress::Need(n)) => prop_assert!(n >= 1),
                Err(_) => {}
            }
        }

        #[test]
        fn valid_prefixes_never_ask_past_the_header(
            a in any::<[u8; 4]>(), b in any::<[u8; 4]>(), sp in any::<u16>(), dp in any::<u16>(),
            six in any::<bool>(), tail in proptest::collection::vec(any::<u8>(), 0..32),
        ) {
            let line = if six {
                let wide = |x: [u8; 4], y: [u8; 4]| {
                    Ipv6Addr::from((u128::from(u32::from_be_bytes(x)) << 96) | u128::from(u32::from_be_bytes(y)))
                };
                format!("PROXY TCP6 {} {} {sp} {dp}\r\n", wide(a, b), wide(b, a))
            } else {
                format!("PROXY TCP4 {} {} {sp} {dp}\r\n", Ipv4Addr::from(a), Ipv4Addr::from(b))
            };
            let mut bytes = line.clone().into_bytes();
            bytes.extend_from_slice(&tail);
            let (header, len) = feed(&bytes).unwrap();
            prop_assert_eq!(len, line.len());
            let proxied = matches!(header, ProxyHeader::Proxied { .. });
            prop_assert!(proxied);
        }
    }
}
