//! The carved capture as pcapng with a Decryption Secrets Block: when the carved sessions have
//! key log lines, the file carries them (only theirs), so it opens decrypted in Wireshark and
//! re-analyzes to the same verdicts in tlsdiag without `--keylog`.

use crate::capture::{LinkType, Packet};
use std::io::{self, Write};

/// Secrets type of a TLS key log in a Decryption Secrets Block ("TLSK").
const TLS_KEY_LOG: u32 = 0x544c_534b;

/// A pcapng writer (little-endian, nanosecond timestamps, one interface) whose section starts
/// with a Decryption Secrets Block.
pub struct PcapngWriter<W: Write> {
    w: W,
    link: Option<LinkType>,
    secrets: Vec<u8>,
}

fn block(w: &mut impl Write, typ: u32, body: &[u8]) -> io::Result<()> {
    let padded = body.len().div_ceil(4) * 4;
    let len = u32::try_from(12 + padded).map_err(|_| io::Error::other("block too long"))?;
    w.write_all(&typ.to_le_bytes())?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(body)?;
    w.write_all([0u8; 3].get(..padded - body.len()).unwrap_or(&[]))?;
    w.write_all(&len.to_le_bytes())
}

impl<W: Write> PcapngWriter<W> {
    /// A writer whose file will hold `secrets` (key log text) in a Decryption Secrets Block.
    pub fn new(w: W, secrets: String) -> PcapngWriter<W> {
        PcapngWriter {
            w,
            link: None,
            secrets: secrets.into_bytes(),
        }
    }

    fn header(&mut self, link: LinkType) -> io::Result<()> {
        // Section header: byte-order magic, version 1.0, section length unknown.
        let mut shb = Vec::with_capacity(16);
        shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        block(&mut self.w, 0x0a0d_0d0a, &shb)?;
        let mut dsb = Vec::with_capacity(8 + self.secrets.len());
        dsb.extend_from_slice(&TLS_KEY_LOG.to_le_bytes());
        let n = u32::try_from(self.secrets.len()).map_err(|_| io::Error::other("key log too long"))?;
        dsb.extend_from_slice(&n.to_le_bytes());
        dsb.extend_from_slice(&self.secrets);
        block(&mut self.w, 0x0000_000a, &dsb)?;
        // Interface: link type, snap length, if_tsresol = 9 (nanoseconds), end of options.
        let mut idb = Vec::with_capacity(20);
        idb.extend_from_slice(&u16::try_from(link.0).unwrap_or(1).to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&262_144u32.to_le_bytes());
        idb.extend_from_slice(&[9, 0, 1, 0, 9, 0, 0, 0]);
        idb.extend_from_slice(&[0, 0, 0, 0]);
        block(&mut self.w, 1, &idb)?;
        self.link = Some(link);
        Ok(())
    }

    /// Writes one packet; returns false (and writes nothing) if its link type differs.
    pub fn write(&mut self, p: &Packet<'_>) -> io::Result<bool> {
        match self.link {
            None => self.header(p.link)?,
            Some(l) if l != p.link => return Ok(false),
            Some(_) => {}
        }
        let ts = u64::try_from(p.ts.0).unwrap_or(0);
        let cap = u32::try_from(p.data.len()).map_err(|_| io::Error::other("packet too long"))?;
        let mut epb = Vec::with_capacity(20 + p.data.len());
        epb.extend_from_slice(&0u32.to_le_bytes());
        epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts as u32).to_le_bytes());
        epb.extend_from_slice(&cap.to_le_bytes());
        epb.extend_from_slice(&p.orig_len.max(cap).to_le_bytes());
        epb.extend_from_slice(p.data);
        block(&mut self.w, 6, &epb)?;
        Ok(true)
    }

    /// Writes the header if no packet came, and flushes.
    pub fn finish(mut self) -> io::Result<()> {
        if self.link.is_none() {
            self.header(LinkType::ETHERNET)?;
        }
        self.w.flush()
    }
}
