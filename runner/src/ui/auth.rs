//! Who may use the web UI: one secret token per server (generated and printed once, or read from `--token-file`),
//! kept by the browser in an HttpOnly, SameSite=Strict cookie; every state-changing request is a POST that carries
//! the CSRF token (derived from the secret) and, when the browser says where it comes from, comes from this origin.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use axum::http::{header, HeaderMap};
use ring::{hmac, rand::SecureRandom};

use crate::exit::UsageError;

/// The cookie that holds the token.
pub const COOKIE: &str = "hookrun_ui";

/// The shortest token a `--token-file` may hold.
const MIN_TOKEN_LEN: usize = 16;

/// The server's secret, and the CSRF token forms carry (an HMAC of a fixed label under the secret: the same for the
/// server's life, unknowable without the secret).
pub struct Secret {
    token: String,
    csrf: String,
}

impl Secret {
    /// A new random token (256 bits, hex).
    pub fn generate() -> anyhow::Result<Self> {
        let mut bytes = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| anyhow::anyhow!("cannot draw a random token"))?;
        Ok(Self::new(hex::encode(bytes)))
    }

    /// The token in `path` (surrounding whitespace removed): a file only its owner can read, holding at least
    /// 16 characters.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let refuse = |why: String| UsageError(format!("token file {}: {why}", path.display()));
        let meta = std::fs::metadata(path).map_err(|e| refuse(e.to_string()))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(refuse(format!("others can read it (mode {mode:04o}); chmod 600 it")).into());
        }
        let text = std::fs::read_to_string(path).map_err(|e| refuse(e.to_string()))?;
        let token = text.trim();
        if token.len() < MIN_TOKEN_LEN || token.chars().any(|c| c.is_whitespace() || c.is_control() || c == ';') {
            return Err(refuse(format!(
                "the token must be at least {MIN_TOKEN_LEN} characters on one line, without spaces or ';'"
            ))
            .into());
        }
        Ok(Self::new(token.to_string()))
    }

    fn new(token: String) -> Self {
        let key = hmac::Key::new(hmac::HMAC_SHA256, token.as_bytes());
        let csrf = hex::encode(hmac::sign(&key, b"hookrun ui csrf").as_ref());
        Self { token, csrf }
    }

    /// The token (for the URL printed at start).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The CSRF token every form carries.
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    /// Whether `given` is the token, compared in constant time.
    pub fn is_token(&self, given: &str) -> bool {
        constant_time_eq(given.as_bytes(), self.token.as_bytes())
    }

    /// Whether `given` is the CSRF token, compared in constant time.
    pub fn is_csrf(&self, given: &str) -> bool {
        constant_time_eq(given.as_bytes(), self.csrf.as_bytes())
    }

    /// Whether the request's cookie holds the token.
    pub fn signed_in(&self, headers: &HeaderMap) -> bool {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .any(|(name, value)| name == COOKIE && self.is_token(value))
    }

    /// The `Set-Cookie` value that signs a browser in.
    pub fn cookie(&self) -> String {
        format!("{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/", self.token)
    }
}

/// Never shows the token.
impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(hidden)")
    }
}

/// Compares two byte strings without an early exit (the length is not secret).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why a POST is refused before anything is looked at: it came from another site. Browsers send `Origin` on every
/// POST, and `Sec-Fetch-Site` when they know it; a request without either (a script, curl) must still carry the
/// CSRF token, checked by the handler.
pub fn cross_site(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let same = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|rest| rest == host);
        if !same {
            return Some(format!("refused: a request from another origin ({origin})"));
        }
    }
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some("same-origin" | "none") | None => None,
        Some(other) => Some(format!("refused: a {other} request")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn only_the_token_in_the_cookie_signs_in() {
        let secret = Secret::new("0123456789abcdef0123".into());
        assert!(secret.signed_in(&headers(&[("cookie", "a=b; hookrun_ui=0123456789abcdef0123")])));
        assert!(!secret.signed_in(&headers(&[("cookie", "hookrun_ui=0123456789abcdef012")])));
        assert!(!secret.signed_in(&headers(&[("cookie", "other=0123456789abcdef0123")])));
        assert!(!secret.signed_in(&HeaderMap::new()));
        assert_ne!(
            secret.csrf(),
            secret.token(),
            "the CSRF token does not give the secret away"
        );
        assert!(secret.is_csrf(secret.csrf()));
    }

    #[test]
    fn a_post_from_another_origin_or_site_is_cross_site() {
        let same = headers(&[("host", "127.0.0.1:8470"), ("origin", "http://127.0.0.1:8470")]);
        assert_eq!(cross_site(&same), None);
        let other = headers(&[("host", "127.0.0.1:8470"), ("origin", "http://evil.example")]);
        assert!(cross_site(&other).unwrap().contains("evil.example"));
        let site = headers(&[("host", "127.0.0.1:8470"), ("sec-fetch-site", "cross-site")]);
        assert!(cross_site(&site).is_some());
        assert_eq!(cross_site(&headers(&[("host", "127.0.0.1:8470")])), None);
    }

    #[test]
    fn a_token_file_others_can_read_or_too_short_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "0123456789abcdef\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(Secret::from_file(&path).unwrap_err().to_string().contains("chmod 600"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(Secret::from_file(&path).unwrap().token(), "0123456789abcdef");
        std::fs::write(&path, "short").unwrap();
        assert!(Secret::from_file(&path)
            .unwrap_err()
            .to_string()
            .contains("at least 16"));
    }
}
