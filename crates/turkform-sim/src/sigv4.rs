//! AWS Signature Version 4: verification of incoming requests, and signing for the benchmark and
//! tests that talk raw HTTP.
//!
//! The three clients sign different header sets (aws-sdk-rust signs `content-type` and
//! `x-amz-content-sha256`... boto3 signs `content-type`, `host`, `x-amz-date`, `x-amz-target`),
//! so the canonical request is rebuilt from the request's own `SignedHeaders` list.

use hmac::{Hmac, Mac};
use hyper::HeaderMap;
use sha2::{Digest, Sha256};

use crate::ids;

/// How far `X-Amz-Date` may be from real wall time, as AWS allows.
pub const MAX_SKEW_SECS: i64 = 15 * 60;

/// The service name in the credential scope.
pub const SERVICE: &str = "mturk-requester";

/// Why a request's signature was refused; each maps to the error AWS sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization` header.
    Missing,
    /// A malformed `Authorization` header or no date.
    Incomplete(String),
    /// The access key is not the configured one.
    UnknownKey,
    /// The date is too far from now; the message says which way.
    Expired(String),
    /// The scope names another service.
    WrongService(String),
    /// The signature does not match.
    Mismatch,
}

struct Parsed<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Result<Parsed<'_>, AuthFailure> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256").ok_or_else(|| {
        AuthFailure::Incomplete(format!(
            "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization={value}"
        ))
    })?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let mut missing = Vec::new();
    if credential.is_none() {
        missing.push("Authorization header requires 'Credential' parameter.");
    }
    if signature.is_none() {
        missing.push("Authorization header requires 'Signature' parameter.");
    }
    if signed.is_none() {
        missing.push("Authorization header requires 'SignedHeaders' parameter.");
    }
    let (Some(credential), Some(signed), Some(signature)) = (credential, signed, signature) else {
        return Err(AuthFailure::Incomplete(format!(
            "{} Authorization={value}",
            missing.join(" ")
        )));
    };
    let pieces: Vec<&str> = credential.split('/').collect();
    if pieces.len() != 5 || pieces[4] != "aws4_request" {
        return Err(AuthFailure::Incomplete(format!(
            "Credential should be scoped to a valid region. Credential={credential}"
        )));
    }
    Ok(Parsed {
        access_key: pieces[0],
        date: pieces[1],
        region: pieces[2],
        service: pieces[3],
        signed_headers: signed.split(';').collect(),
        signature,
    })
}

/// Checks a request's SigV4 signature against one key pair. `real_now` is wall-clock epoch
/// seconds: the date check ignores the simulator's virtual clock, as the real service would.
pub fn verify(
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
    access_key_id: &str,
    secret_access_key: &str,
    real_now: i64,
) -> Result<(), AuthFailure> {
    let Some(auth) = headers.get("authorization") else {
        return Err(AuthFailure::Missing);
    };
    let auth = auth
        .to_str()
        .map_err(|_| AuthFailure::Incomplete("Authorization header is not ASCII".into()))?;
    let parsed = parse_authorization(auth)?;
    if parsed.access_key != access_key_id {
        return Err(AuthFailure::UnknownKey);
    }
    if parsed.service != SERVICE {
        return Err(AuthFailure::WrongService(format!(
            "Credential should be scoped to correct service: '{SERVICE}'. "
        )));
    }
    let amz_date = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            AuthFailure::Incomplete(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
                    .into(),
            )
        })?;
    let Some(when) = ids::parse_amz_date(amz_date) else {
        return Err(AuthFailure::Incomplete(format!(
            "Date must be in ISO-8601 'basic format'. Got '{amz_date}'. See http://en.wikipedia.org/wiki/ISO_8601"
        )));
    };
    if when < real_now - MAX_SKEW_SECS {
        return Err(AuthFailure::Expired(format!(
            "Signature expired: {amz_date} is now earlier than {} ({} - 15 min.)",
            ids::format_amz_date(real_now - MAX_SKEW_SECS),
            ids::format_amz_date(real_now)
        )));
    }
    if when > real_now + MAX_SKEW_SECS {
        return Err(AuthFailure::Expired(format!(
            "Signature not yet current: {amz_date} is still later than {} ({} + 15 min.)",
            ids::format_amz_date(real_now + MAX_SKEW_SECS),
            ids::format_amz_date(real_now)
        )));
    }
    let payload_hash = match headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
    {
        Some(h) => h.to_owned(),
        None => hex::encode(Sha256::digest(body)),
    };
    let canonical = canonical_request(
        method,
        path,
        query,
        &parsed.signed_headers,
        |name| {
            let values: Vec<String> = headers
                .get_all(name)
                .iter()
                .map(|v| collapse(&String::from_utf8_lossy(v.as_bytes())))
                .collect();
            values.join(",")
        },
        &payload_hash,
    );
    let expected = signature(
        secret_access_key,
        amz_date,
        parsed.date,
        parsed.region,
        parsed.service,
        &canonical,
    );
    if constant_time_eq(expected.as_bytes(), parsed.signature.as_bytes()) {
        Ok(())
    } else {
        Err(AuthFailure::Mismatch)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Trims a header value and collapses runs of spaces, as SigV4 canonicalisation requires.
fn collapse(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for word in value.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

fn canonical_request(
    method: &str,
    path: &str,
    query: &str,
    signed_headers: &[&str],
    header_value: impl Fn(&str) -> String,
    payload_hash: &str,
) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(method);
    out.push('\n');
    out.push_str(if path.is_empty() { "/" } else { path });
    out.push('\n');
    out.push_str(&canonical_query(query));
    out.push('\n');
    for name in signed_headers {
        out.push_str(name);
        out.push(':');
        out.push_str(&header_value(name));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed_headers.join(";"));
    out.push('\n');
    out.push_str(payload_hash);
    out
}

fn canonical_query(query: &str) -> String {
    if query.is_empty() {
        return String::new();
    }
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k)),
                uri_encode(&percent_decode(v)),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn uri_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn signature(
    secret: &str,
    amz_date: &str,
    scope_date: &str,
    region: &str,
    service: &str,
    canonical: &str,
) -> String {
    let scope = format!("{scope_date}/{region}/{service}/aws4_request");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), scope_date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    let k_signing = hmac(&k_service, b"aws4_request");
    hex::encode(hmac(&k_signing, string_to_sign.as_bytes()))
}

/// The headers a raw client must send for one signed `POST /` of the MTurk JSON API: returns
/// `(name, value)` pairs including `authorization`. `epoch_secs` is the signing time.
pub fn sign_json_request(
    host: &str,
    target: &str,
    body: &[u8],
    access_key_id: &str,
    secret_access_key: &str,
    region: &str,
    epoch_secs: i64,
) -> Vec<(&'static str, String)> {
    let amz_date = ids::format_amz_date(epoch_secs);
    let scope_date = &amz_date[..8];
    let headers: Vec<(&'static str, String)> = vec![
        ("content-type", "application/x-amz-json-1.1".to_owned()),
        ("host", host.to_owned()),
        ("x-amz-date", amz_date.clone()),
        ("x-amz-target", target.to_owned()),
    ];
    let names: Vec<&str> = headers.iter().map(|(n, _)| *n).collect();
    let canonical = canonical_request(
        "POST",
        "/",
        "",
        &names,
        |name| {
            headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| collapse(v))
                .unwrap_or_default()
        },
        &hex::encode(Sha256::digest(body)),
    );
    let sig = signature(
        secret_access_key,
        &amz_date,
        scope_date,
        region,
        SERVICE,
        &canonical,
    );
    let mut out = headers;
    out.push((
        "authorization",
        format!(
            "AWS4-HMAC-SHA256 Credential={access_key_id}/{scope_date}/{region}/{SERVICE}/aws4_request, SignedHeaders={}, Signature={sig}",
            names.join(";")
        ),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_map(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (n, v) in pairs {
            map.append(*n, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn a_signed_request_verifies_and_a_tampered_one_does_not() {
        let now = 1_700_000_000;
        let body = br#"{"HITId":"X"}"#;
        let headers = sign_json_request(
            "127.0.0.1:1",
            "T.GetHIT",
            body,
            "AK",
            "SK",
            "us-east-1",
            now,
        );
        let map = header_map(&headers);
        assert_eq!(verify("POST", "/", "", &map, body, "AK", "SK", now), Ok(()));
        assert_eq!(
            verify("POST", "/", "", &map, b"{}", "AK", "SK", now),
            Err(AuthFailure::Mismatch)
        );
        assert_eq!(
            verify("POST", "/", "", &map, body, "AK", "other", now),
            Err(AuthFailure::Mismatch)
        );
        assert_eq!(
            verify("POST", "/", "", &map, body, "AK2", "SK", now),
            Err(AuthFailure::UnknownKey)
        );
        assert!(matches!(
            verify("POST", "/", "", &map, body, "AK", "SK", now + 16 * 60),
            Err(AuthFailure::Expired(m)) if m.starts_with("Signature expired: ")
        ));
        assert_eq!(
            verify("POST", "/", "", &HeaderMap::new(), body, "AK", "SK", now),
            Err(AuthFailure::Missing)
        );
    }

    #[test]
    fn header_values_are_trimmed_and_collapsed() {
        assert_eq!(collapse("  a   b  c "), "a b c");
    }
}
