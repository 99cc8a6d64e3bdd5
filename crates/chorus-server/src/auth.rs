//! Who may read or write which document: signed JWTs checked before the WebSocket upgrade.
//!
//! A token names a document (exactly, or a prefix ending in `*`), a mode (`read` or `write`) and
//! an expiry. Only the algorithm the server is configured for is accepted, so `alg: none` and
//! algorithm confusion (an RS256 public key used as an HS256 secret) are refused by construction.

use std::path::Path;

use chorus_protocol::DocName;
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode,
};
use serde::{Deserialize, Serialize};

/// What a connection may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Receive everything; edits are refused.
    Read,
    /// Receive and edit.
    Write,
}

/// The claims Chorus reads from a token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The document, or a prefix ending in `*`.
    pub doc: String,
    /// What the holder may do.
    pub mode: Mode,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Who holds it (the standard JWT subject): edits are attributed to it in the document's
    /// history. Tokens without it edit as `anonymous`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
}

impl Claims {
    fn covers(&self, doc: &DocName) -> bool {
        match self.doc.strip_suffix('*') {
            Some(prefix) => doc.as_str().starts_with(prefix),
            None => self.doc == doc.as_str(),
        }
    }
}

/// Why a connection is refused. Never carries the token itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `token` query parameter.
    #[error("a token is required (?token=...)")]
    Missing,
    /// Bad signature, wrong algorithm, malformed or expired.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// A valid token for another document.
    #[error("the token does not grant access to this document")]
    WrongDocument,
}

/// Checks tokens against the configured key.
pub struct Authenticator {
    key: DecodingKey,
    algorithm: Algorithm,
}

impl Authenticator {
    /// HS256 with a shared secret.
    pub fn hs256(secret: &[u8]) -> Self {
        Self {
            key: DecodingKey::from_secret(secret),
            algorithm: Algorithm::HS256,
        }
    }

    /// RS256 or ES256 with a PEM public key, chosen by the key's type.
    ///
    /// # Errors
    /// [`KeyFileError`], naming the file, when it cannot be read or holds no RSA or EC public
    /// key.
    pub fn from_public_key_file(path: &Path) -> Result<Self, KeyFileError> {
        let pem = std::fs::read(path).map_err(|error| KeyFileError::Unreadable {
            path: path.to_owned(),
            error,
        })?;
        if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
            return Ok(Self {
                key,
                algorithm: Algorithm::RS256,
            });
        }
        if let Ok(key) = DecodingKey::from_ec_pem(&pem) {
            return Ok(Self {
                key,
                algorithm: Algorithm::ES256,
            });
        }
        Err(KeyFileError::NotAKey(path.to_owned()))
    }

    /// The mode `token` grants on `doc`, and when it expires.
    ///
    /// # Errors
    /// See [`AuthError`].
    pub fn authorize(&self, token: Option<&str>, doc: &DocName) -> Result<Claims, AuthError> {
        let token = token.filter(|t| !t.is_empty()).ok_or(AuthError::Missing)?;
        let header = decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
        if header.alg != self.algorithm {
            return Err(AuthError::Invalid(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let mut validation = Validation::new(self.algorithm);
        validation.set_required_spec_claims(&["exp"]);
        validation.leeway = 0;
        let claims = decode::<Claims>(token, &self.key, &validation)
            .map_err(|e| AuthError::Invalid(e.to_string()))?
            .claims;
        if !claims.covers(doc) {
            return Err(AuthError::WrongDocument);
        }
        Ok(claims)
    }

    /// The algorithm tokens must use.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

/// Signs client tokens with the HS256 `--auth-secret`, for `POST /api/v1/tokens`. (With
/// `--auth-public-key` the server holds no private key and cannot sign.)
pub struct TokenMinter {
    key: EncodingKey,
}

impl TokenMinter {
    /// A minter for the HS256 shared secret.
    pub fn hs256(secret: &[u8]) -> Self {
        Self {
            key: EncodingKey::from_secret(secret),
        }
    }

    /// A signed token carrying `claims`.
    ///
    /// # Errors
    /// What the JWT library reports; not expected for these plain claims.
    pub fn mint(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        encode(&Header::new(Algorithm::HS256), claims, &self.key)
    }
}

/// Why `--auth-public-key` names no usable key.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file cannot be read.
    #[error("--auth-public-key (CHORUS_AUTH_PUBLIC_KEY) {}: cannot read it ({error})", path.display())]
    Unreadable {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The file holds no RSA or EC public key.
    #[error("--auth-public-key (CHORUS_AUTH_PUBLIC_KEY) {}: not a PEM RSA or EC (P-256) public key; give the public half of the key that signs the tokens", .0.display())]
    NotAKey(std::path::PathBuf),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    fn token(secret: &[u8], doc: &str, mode: &str, exp: u64) -> String {
        let claims = serde_json::json!({ "doc": doc, "mode": mode, "exp": exp });
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .expect("encodes")
    }

    fn doc(name: &str) -> DocName {
        DocName::parse(name).expect("valid")
    }

    #[test]
    fn grants_the_mode_for_the_named_document_or_prefix() {
        let auth = Authenticator::hs256(b"secret");
        let exp = now() + 60;
        let write = auth
            .authorize(
                Some(&token(b"secret", "notes", "write", exp)),
                &doc("notes"),
            )
            .expect("valid");
        assert_eq!(write.mode, Mode::Write);
        let read = auth
            .authorize(
                Some(&token(b"secret", "team/*", "read", exp)),
                &doc("team/a/b"),
            )
            .expect("prefix");
        assert_eq!(read.mode, Mode::Read);
        assert_eq!(
            auth.authorize(
                Some(&token(b"secret", "notes", "write", exp)),
                &doc("other")
            )
            .map(|c| c.mode),
            Err(AuthError::WrongDocument)
        );
    }

    #[test]
    fn minted_tokens_are_accepted_for_what_they_name() {
        let claims = Claims {
            doc: "team/*".into(),
            mode: Mode::Read,
            exp: now() + 60,
            sub: Some("ada".into()),
        };
        let token = TokenMinter::hs256(b"secret").mint(&claims).expect("mints");
        let auth = Authenticator::hs256(b"secret");
        let granted = auth.authorize(Some(&token), &doc("team/a")).expect("valid");
        assert_eq!(granted.mode, Mode::Read);
        assert_eq!(granted.sub.as_deref(), Some("ada"));
        assert_eq!(
            auth.authorize(Some(&token), &doc("other")).map(|c| c.mode),
            Err(AuthError::WrongDocument)
        );
    }

    #[test]
    fn refuses_missing_expired_forged_and_unsigned_tokens() {
        let auth = Authenticator::hs256(b"secret");
        let d = doc("notes");
        assert_eq!(
            auth.authorize(None, &d).map(|c| c.mode),
            Err(AuthError::Missing)
        );
        let expired = token(b"secret", "notes", "write", now() - 1);
        assert!(matches!(
            auth.authorize(Some(&expired), &d),
            Err(AuthError::Invalid(_))
        ));
        let forged = token(b"other secret", "notes", "write", now() + 60);
        assert!(matches!(
            auth.authorize(Some(&forged), &d),
            Err(AuthError::Invalid(_))
        ));
        // {"alg":"none"} with the same claims and no signature.
        let unsigned = format!(
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
            token(b"secret", "notes", "write", now() + 60)
                .split('.')
                .nth(1)
                .expect("payload")
        );
        assert!(matches!(
            auth.authorize(Some(&unsigned), &d),
            Err(AuthError::Invalid(_))
        ));
    }
}
