//! What the chain a server sent says about an issuer its client did not trust: which CA the
//! trust stops at, and whether the chain itself leaves it out (the commonest unknown_ca in the
//! field: a server that sends its leaf without the intermediate certificate; browsers that
//! fetch or cache intermediates load the page, curl, Python and Go clients refuse it).

use crate::tls::cert::CertInfo;
use std::sync::Arc;

/// The words for an untrusted issuer, read along the path from the leaf: the root it ends at, or,
/// when it leaves the chain at a certificate that is not self-signed, that the chain stops before
/// that one's issuer (the server leaves out an intermediate, or the client lacks that CA). `None`
/// without a readable certificate.
pub(super) fn untrusted_issuer(chain: &[Arc<CertInfo>]) -> Option<String> {
    let readable: Vec<&CertInfo> = chain.iter().map(|c| &**c).filter(|c| c.parse_error.is_none()).collect();
    // From the leaf along the issuers the chain holds, in any order (each certificate once): the
    // path a client builds, up to where it leaves the chain.
    let mut at = *readable.first()?;
    let mut used = vec![false; readable.len()];
    if let Some(u) = used.first_mut() {
        *u = true;
    }
    loop {
        if at.self_signed {
            return Some(format!(
                "the chain ends at its root {}, which the client does not trust",
                at.subject
            ));
        }
        let next = readable
            .iter()
            .zip(used.iter_mut())
            .find(|(c, u)| !**u && c.subject == at.issuer);
        match next {
            Some((c, u)) => {
                *u = true;
                at = c;
            }
            None => break,
        }
    }
    let n = chain.len();
    Some(format!(
        "the chain the server sent ({n} certificate{}) stops at {}, issued by {}, which it does not include: either the server leaves out that intermediate certificate or the client does not trust that CA",
        if n == 1 { "" } else { "s" },
        at.subject,
        at.issuer
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, clippy::unwrap_used, reason = "test code")]
    use super::*;

    fn cert(subject: &str, issuer: &str) -> Arc<CertInfo> {
        let mut c = CertInfo::from_der(include_bytes!("../tls/testdata/comma-in-o.der"));
        c.subject = subject.into();
        c.issuer = issuer.into();
        c.self_signed = subject == issuer;
        c.parse_error = None;
        Arc::new(c)
    }

    #[test]
    fn a_chain_without_the_leafs_issuer_says_so() {
        let leaf = cert("CN=good.test", "CN=Intermediate");
        let inter = cert("CN=Intermediate", "CN=Root");
        let root = cert("CN=Root", "CN=Root");
        let one = untrusted_issuer(std::slice::from_ref(&leaf)).unwrap();
        assert!(
            one.contains("(1 certificate) stops at CN=good.test, issued by CN=Intermediate"),
            "{one}"
        );
        let two = untrusted_issuer(&[leaf.clone(), inter.clone()]).unwrap();
        assert!(
            two.contains("(2 certificates) stops at CN=Intermediate, issued by CN=Root"),
            "{two}"
        );
        let full = untrusted_issuer(&[leaf.clone(), inter.clone(), root.clone()]).unwrap();
        assert_eq!(
            full,
            "the chain ends at its root CN=Root, which the client does not trust"
        );
        // Out of order, the intermediate still there: the path goes on to where it leaves.
        let swapped = untrusted_issuer(&[leaf.clone(), root.clone(), inter]).unwrap();
        assert_eq!(
            swapped,
            "the chain ends at its root CN=Root, which the client does not trust"
        );
        // A wrong intermediate sent in place of the leaf's issuer: the path stops at the leaf.
        let other = cert("CN=Other CA", "CN=Other CA");
        let wrong = untrusted_issuer(&[leaf, other]).unwrap();
        assert!(
            wrong.contains("(2 certificates) stops at CN=good.test, issued by CN=Intermediate"),
            "{wrong}"
        );
        assert_eq!(untrusted_issuer(&[]), None);
    }
}
