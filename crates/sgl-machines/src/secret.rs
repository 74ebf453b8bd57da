//! A cloud provider's API token: wiped from memory when dropped, printed as `<redacted>`, and
//! only ever sent in an `Authorization` header marked sensitive, never in a URL or a log line.

use std::fmt;

use reqwest::header::HeaderValue;
use zeroize::Zeroizing;

/// A provider's API token (Vultr's API key, a DigitalOcean personal access token).
#[derive(Clone)]
pub struct ProviderToken(Zeroizing<String>);

/// Why a token was refused: it holds a character an HTTP header cannot carry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a provider API token must be visible ASCII without spaces")]
pub struct InvalidToken;

impl ProviderToken {
    /// Wraps a token; only visible ASCII without spaces is accepted, as a header needs.
    pub fn new(token: String) -> Result<Self, InvalidToken> {
        let token = Zeroizing::new(token);
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(InvalidToken);
        }
        Ok(Self(token))
    }

    /// `Bearer <token>`, marked sensitive so that no HTTP layer prints it.
    pub(crate) fn authorization(&self) -> HeaderValue {
        let text = Zeroizing::new(format!("Bearer {}", self.0.as_str()));
        // `new` admitted visible ASCII only, which a header value always accepts.
        let mut value = HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("Bearer"));
        value.set_sensitive(true);
        value
    }
}

impl fmt::Debug for ProviderToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    //! A token never prints and only header-safe tokens are taken.

    use super::*;

    #[test]
    fn a_token_never_prints_and_must_fit_a_header() {
        let token = ProviderToken::new("dop_v1_secret".into()).unwrap();
        assert_eq!(format!("{token:?}"), "<redacted>");
        assert_eq!(token.authorization().to_str().unwrap(), "Bearer dop_v1_secret");
        assert!(token.authorization().is_sensitive());
        assert!(!format!("{:?}", token.authorization()).contains("secret"));
        for bad in ["", "with space", "new\nline", "é"] {
            assert_eq!(ProviderToken::new(bad.into()).unwrap_err(), InvalidToken);
        }
    }
}
