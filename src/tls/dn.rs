//! Distinguished names built from the parsed RDNs of a certificate, never from a rendered string.
//!
//! What it is: one walk over x509-parser's RDN and attribute iterators that yields the DN as one
//! string with RFC 4514 value escaping, and the common names as the parsed attribute values.
//! What it is not: an RFC 4514 printer in every detail: the RDNs are listed in the
//! certificate's order (as OpenSSL and x509-parser print them), not reversed.
//! Guarantees: a value can never forge a separator or another attribute (`O="evil, CN=victim"`
//! stays one `O` value), and the rendered DN holds no control character (they are `\XX` escapes);
//! the common names are exact, for the hostname check and for JSON.

use x509_parser::der_parser::asn1_rs::{Any, Tag};
use x509_parser::prelude::*;

/// A distinguished name as rendered and as parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dn {
    /// The whole name, `TYPE=value` pairs joined by `, ` (`+` inside a multi-valued RDN), values
    /// escaped as RFC 4514 section 2.4 says.
    pub rendered: String,
    /// The values of the CN attributes, exact and unescaped, in order.
    pub common_names: Vec<String>,
}

/// Builds the [`Dn`] of a parsed name.
pub fn from_name(name: &X509Name<'_>) -> Dn {
    let mut dn = Dn::default();
    for (i, rdn) in name.iter_rdn().enumerate() {
        if i > 0 {
            dn.rendered.push_str(", ");
        }
        for (j, attr) in rdn.iter().enumerate() {
            if j > 0 {
                dn.rendered.push('+');
            }
            let oid = attr.attr_type();
            match oid2abbrev(oid, oid_registry()) {
                Ok(abbrev) => dn.rendered.push_str(abbrev),
                Err(_) => dn.rendered.push_str(&oid.to_id_string()),
            }
            dn.rendered.push('=');
            match value_text(attr.attr_value()) {
                Some(v) => {
                    escape_value_into(&v, &mut dn.rendered);
                    if *oid == oid_registry::OID_X509_COMMON_NAME {
                        dn.common_names.push(v);
                    }
                }
                // RFC 4514 section 2.4: a value that is not a string is `#` and the hex of its BER.
                None => {
                    dn.rendered.push('#');
                    dn.rendered.push_str(&super::cert::hex(attr.attr_value().as_bytes()));
                }
            }
        }
    }
    dn
}

/// The text of a string-typed attribute value (invalid UTF-8 replaced), `None` for other types.
fn value_text(v: &Any<'_>) -> Option<String> {
    let data = v.as_bytes();
    match v.tag() {
        Tag::Utf8String
        | Tag::PrintableString
        | Tag::Ia5String
        | Tag::NumericString
        | Tag::VisibleString
        | Tag::TeletexString
        | Tag::VideotexString
        | Tag::GraphicString
        | Tag::GeneralString => Some(String::from_utf8_lossy(data).into_owned()),
        Tag::BmpString => Some(
            char::decode_utf16(data.chunks(2).map(|c| match c {
                [a, b] => u16::from_be_bytes([*a, *b]),
                _ => 0xfffd,
            }))
            .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect(),
        ),
        Tag::UniversalString => Some(
            data.chunks(4)
                .map(|c| match c {
                    [a, b, x, y] => char::from_u32(u32::from_be_bytes([*a, *b, *x, *y])),
                    _ => None,
                })
                .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect(),
        ),
        _ => None,
    }
}

/// Appends `v` with RFC 4514 escaping: `"+,;<>\` and a leading `#` or space and a trailing space
/// get a backslash; control characters (C0, DEL, C1) are written as the `\XX` hex of their UTF-8
/// bytes, so the rendered name holds none.
pub fn escape_value_into(v: &str, out: &mut String) {
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\{b:02X}"));
                }
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(v: &str) -> String {
        let mut s = String::new();
        escape_value_into(v, &mut s);
        s
    }

    #[test]
    fn rfc4514_specials_and_controls() {
        assert_eq!(esc("evil, CN=victim.test"), "evil\\, CN=victim.test");
        assert_eq!(esc("#a b "), "\\#a b\\ ");
        assert_eq!(esc(" x"), "\\ x");
        assert_eq!(esc("a+b;c<d>e\"f\\g"), "a\\+b\\;c\\<d\\>e\\\"f\\\\g");
        assert_eq!(esc("\x1b[2J\r\n\u{7f}\u{9b}"), "\\1B[2J\\0D\\0A\\7F\\C2\\9B");
        assert_eq!(esc("a#b"), "a#b");
        assert_eq!(esc(""), "");
    }

    /// A certificate made by `openssl req -subj '/O=evil, CN=victim.test/CN=attacker.test'`.
    #[test]
    fn a_comma_inside_a_value_is_not_a_new_attribute() {
        let der = include_bytes!("testdata/comma-in-o.der");
        let (_, x) = X509Certificate::from_der(der).unwrap();
        let dn = from_name(x.subject());
        assert_eq!(dn.common_names, vec!["attacker.test".to_string()]);
        assert_eq!(dn.rendered, "O=evil\\, CN=victim.test, CN=attacker.test");
    }
}
