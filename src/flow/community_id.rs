//! Community ID v1: the flow hash Zeek, Suricata, Arkime, Wireshark and Elastic emit, so that
//! records of one connection from different tools join on one value.
//!
//! What it is: the published algorithm (corelight/community-id-spec): SHA-1 over the seed, the
//! two endpoints in a canonical order (the smaller address, or the smaller port when the
//! addresses are equal, first), the IP protocol and a zero pad byte, base64-encoded behind
//! `1:`. What it is not: a privacy measure; a hash of a client address can be brute-forced, so
//! redacted reports compute it over the pseudonyms.

use super::Endpoint;
use base64::Engine;
use sha1::{Digest, Sha1};
use std::net::IpAddr;

/// IANA protocol number of TCP.
pub const PROTO_TCP: u8 = 6;

/// Community ID v1 of a TCP or UDP flow between two endpoints (either order gives the same).
pub fn community_id(seed: u16, a: Endpoint, b: Endpoint, proto: u8) -> String {
    let key = |e: &Endpoint| {
        let ip: Vec<u8> = match e.ip {
            IpAddr::V4(v) => v.octets().to_vec(),
            IpAddr::V6(v) => v.octets().to_vec(),
        };
        (ip, e.port)
    };
    let (ka, kb) = (key(&a), key(&b));
    let (first, second) = if ka <= kb { (ka, kb) } else { (kb, ka) };
    let mut h = Sha1::new();
    h.update(seed.to_be_bytes());
    h.update(&first.0);
    h.update(&second.0);
    h.update([proto, 0]);
    h.update(first.1.to_be_bytes());
    h.update(second.1.to_be_bytes());
    format!("1:{}", base64::engine::general_purpose::STANDARD.encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(s: &str, port: u16) -> Endpoint {
        Endpoint {
            ip: s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
            port,
        }
    }

    /// The TCP vectors of the spec's baseline (community-id-spec, baseline/baseline_*.json).
    #[test]
    fn spec_baseline_vectors() {
        let flow = (ep("128.232.110.120", 34855), ep("66.35.250.204", 80));
        assert_eq!(
            community_id(0, flow.0, flow.1, PROTO_TCP),
            "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
        );
        // Direction does not matter.
        assert_eq!(
            community_id(0, flow.1, flow.0, PROTO_TCP),
            "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
        );
    }

    /// A loopback connection of samples/cases/tls12-expired, as tshark 4.0 computes it
    /// (`tshark --enable-protocol communityid -e communityid`).
    #[test]
    fn equals_tshark_on_a_sample_flow() {
        let c = ep("127.0.0.1", 46722);
        let s = ep("127.0.0.1", 443);
        assert_eq!(community_id(0, c, s, PROTO_TCP), "1:H2ImX70fqpRJQ7QoZQhsHp4a/xs=");
        // `-o communityid.seed:1`
        assert_eq!(community_id(1, c, s, PROTO_TCP), "1:T4MQQRzCkMARjVp93+ASnqVccxI=");
    }

    /// Equal addresses: the smaller port goes first.
    #[test]
    fn same_address_orders_by_port() {
        let a = ep("127.0.0.1", 443);
        let b = ep("127.0.0.1", 50000);
        assert_eq!(community_id(0, a, b, PROTO_TCP), community_id(0, b, a, PROTO_TCP));
    }
}
