//! The parts of pcapng blocks the reader needs: interface descriptions, packet blocks and
//! Decryption Secrets Blocks (TLS key logs).

use super::{Endian, Interface};
use crate::capture::{LinkType, Timestamp};

pub(super) fn parse_idb(e: Endian, body: &[u8]) -> Option<Interface> {
    if body.len() < 8 {
        return None;
    }
    let link = LinkType(e.u16(body, 0) as u32);
    let snaplen = e.u32(body, 4);
    let mut units_per_sec = 1_000_000u64;
    let mut offset_secs = 0i64;
    let mut opts = body.get(8..).unwrap_or(&[]);
    while opts.len() >= 4 {
        let code = e.u16(opts, 0);
        let len = e.u16(opts, 2) as usize;
        let padded = (len + 3) & !3;
        let Some(val) = opts.get(4..4 + len) else {
            break;
        };
        match code {
            0 => break,
            9 if len >= 1 => {
                let v = val.first().copied().unwrap_or(6);
                let exp = (v & 0x7f) as u32;
                units_per_sec = if v & 0x80 == 0 {
                    10u64.checked_pow(exp).unwrap_or(1_000_000)
                } else {
                    1u64.checked_shl(exp).unwrap_or(1_000_000)
                };
                if units_per_sec == 0 {
                    units_per_sec = 1_000_000;
                }
            }
            14 if len >= 8 => offset_secs = e.i64(val, 0),
            _ => {}
        }
        let Some(rest) = opts.get(4 + padded..) else {
            break;
        };
        opts = rest;
    }
    Some(Interface {
        link,
        snaplen,
        units_per_sec,
        offset_secs,
    })
}

type BlockPacket = (Timestamp, LinkType, usize, usize, u32);

pub(super) fn parse_packet_block(
    e: Endian,
    btype: u32,
    body: &[u8],
    interfaces: &[Interface],
) -> Result<BlockPacket, &'static str> {
    let (iface_id, ts_raw, data_start, caplen, orig) = match btype {
        // Enhanced packet block (6), or the obsolete packet block (2) whose interface id is
        // 16 bits (then a drops count): the same layout otherwise.
        6 | 2 => {
            if body.len() < 20 {
                return Err("pcapng_short_packet_block");
            }
            let ts = ((e.u32(body, 4) as u64) << 32) | e.u32(body, 8) as u64;
            let iface = if btype == 6 {
                e.u32(body, 0) as usize
            } else {
                e.u16(body, 0) as usize
            };
            (iface, Some(ts), 20, e.u32(body, 12) as usize, e.u32(body, 16))
        }
        _ => {
            // Simple packet block: no timestamp, interface 0, captured length implied.
            if body.len() < 4 {
                return Err("pcapng_short_packet_block");
            }
            let orig = e.u32(body, 0);
            let snap = interfaces.first().map(|i| i.snaplen).unwrap_or(0);
            let mut cap = (body.len() - 4).min(orig as usize);
            if snap > 0 {
                cap = cap.min(snap as usize);
            }
            (0, None, 4, cap, orig)
        }
    };
    let Some(iface) = interfaces.get(iface_id) else {
        return Err("pcapng_unknown_interface");
    };
    if data_start + caplen > body.len() {
        return Err("pcapng_packet_longer_than_block");
    }
    let ts = match ts_raw {
        Some(raw) => {
            let per = iface.units_per_sec as u128;
            let secs = (raw as u128 / per) as i64;
            let rem = (raw as u128 % per) * 1_000_000_000 / per;
            Timestamp::from_parts(secs.saturating_add(iface.offset_secs), rem as i64)
        }
        None => Timestamp(0),
    };
    Ok((ts, iface.link, data_start, caplen, orig))
}

/// Block type of a Decryption Secrets Block.
pub(super) const DECRYPTION_SECRETS_BLOCK: u32 = 0x0000_000A;
/// Its secrets type for a TLS key log ("TLSK").
const SECRETS_TLS_KEY_LOG: u32 = 0x544c_534b;

/// The TLS key log text of a Decryption Secrets Block body; `None` for other secrets or a
/// malformed block.
pub(super) fn decryption_secrets(e: Endian, body: &[u8]) -> Option<Vec<u8>> {
    if body.len() < 8 || e.u32(body, 0) != SECRETS_TLS_KEY_LOG {
        return None;
    }
    let len = e.u32(body, 4) as usize;
    body.get(8..8usize.checked_add(len)?).map(<[u8]>::to_vec)
}
