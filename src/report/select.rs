//! Choosing and preparing sessions for a report: filters (outcome, cause, reason, server, SNI)
//! (redaction of client addresses: [`super::pseudonymize`]).

use super::model::SessionReport;
use crate::diagnose::{Cause, Outcome, Reason};
use std::net::IpAddr;

/// Which sessions a report keeps. Empty lists keep everything.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    outcomes: Vec<Outcome>,
    causes: Vec<Cause>,
    reasons: Vec<Reason>,
    servers: Vec<(IpAddr, Option<u16>)>,
    names: Vec<String>,
}

impl Selection {
    /// Validates the filter flags; the error names the bad value and the accepted ones.
    pub fn parse(
        outcomes: &[String],
        causes: &[String],
        reasons: &[String],
        servers: &[String],
        names: &[String],
    ) -> Result<Selection, String> {
        let mut sel = Selection::default();
        for o in outcomes {
            sel.outcomes.push(match o.as_str() {
                "established" => Outcome::Established,
                "failed" => Outcome::Failed,
                "incomplete" => Outcome::Incomplete,
                _ => return Err(format!("unknown outcome '{o}' (established, failed, incomplete)")),
            });
        }
        for c in causes {
            sel.causes.push(
                Cause::ALL
                    .iter()
                    .copied()
                    .find(|x| x.id() == c)
                    .ok_or_else(|| format!("unknown cause '{c}' (timeout, protocol, certificate, cipher)"))?,
            );
        }
        for r in reasons {
            sel.reasons
                .push(Reason::from_id(r).ok_or_else(|| format!("unknown reason '{r}' (see `tlsdiag reasons`)"))?);
        }
        for s in servers {
            sel.servers
                .push(parse_server(s).ok_or_else(|| format!("bad server address '{s}' (IP, IP:PORT or [IPv6]:PORT)"))?);
        }
        sel.names = names.iter().map(|n| n.to_ascii_lowercase()).collect();
        Ok(sel)
    }

    /// Whether no filter is set.
    pub fn is_empty(&self) -> bool {
        self.outcomes.is_empty()
            && self.causes.is_empty()
            && self.reasons.is_empty()
            && self.servers.is_empty()
            && self.names.is_empty()
    }

    /// Whether a session is kept.
    pub fn matches(&self, s: &SessionReport) -> bool {
        let reason = s.reason.as_deref().and_then(Reason::from_id);
        (self.outcomes.is_empty() || self.outcomes.contains(&s.outcome))
            && (self.causes.is_empty() || s.cause.is_some_and(|c| self.causes.contains(&c)))
            && (self.reasons.is_empty() || reason.is_some_and(|r| self.reasons.contains(&r)))
            && (self.servers.is_empty()
                || self
                    .servers
                    .iter()
                    .any(|(ip, port)| s.server.ip == *ip && port.is_none_or(|p| p == s.server.port)))
            && (self.names.is_empty()
                || s.server_name()
                    .is_some_and(|n| self.names.iter().any(|pat| name_matches(pat, n))))
    }

    /// A short description for report headers, e.g. `cause=certificate sni=*.example.com`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.outcomes.is_empty() {
            parts.push(format!(
                "outcome={}",
                self.outcomes.iter().map(|o| o.id()).collect::<Vec<_>>().join(",")
            ));
        }
        if !self.causes.is_empty() {
            parts.push(format!(
                "cause={}",
                self.causes.iter().map(|c| c.id()).collect::<Vec<_>>().join(",")
            ));
        }
        if !self.reasons.is_empty() {
            parts.push(format!(
                "reason={}",
                self.reasons.iter().map(|r| r.id()).collect::<Vec<_>>().join(",")
            ));
        }
        if !self.servers.is_empty() {
            let v: Vec<String> = self
                .servers
                .iter()
                .map(|(ip, p)| p.map(|p| format!("{ip}:{p}")).unwrap_or_else(|| ip.to_string()))
                .collect();
            parts.push(format!("server={}", v.join(",")));
        }
        if !self.names.is_empty() {
            parts.push(format!("sni={}", self.names.join(",")));
        }
        parts.join(" ")
    }
}

fn parse_server(s: &str) -> Option<(IpAddr, Option<u16>)> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some((ip, None));
    }
    if let Ok(sa) = s.parse::<std::net::SocketAddr>() {
        return Some((sa.ip(), Some(sa.port())));
    }
    None
}

fn name_matches(pattern: &str, name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(suffix) => name.ends_with(&format!(".{suffix}")),
        None => pattern == name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_filters_are_named() {
        let e = Selection::parse(&[], &["certs".into()], &[], &[], &[])
            .err()
            .unwrap_or_default();
        assert!(e.contains("certs"));
        let s = Selection::parse(
            &[],
            &[],
            &[],
            &["[::1]:443".into(), "10.0.0.5".into()],
            &["*.example.com".into()],
        );
        assert!(s.is_ok());
        assert!(name_matches("*.example.com", "API.example.com"));
        assert!(!name_matches("*.example.com", "example.com"));
    }
}
