//! Random tokens and their SHA-256 digests, and the cipher for secrets Liftoff must read back.
//!
//! Secrets (API keys, session tokens) are shown once and stored only as digests, so a copy of
//! the database does not grant access. Secrets Liftoff itself needs later (webhook URLs, SMTP
//! passwords) are sealed with ChaCha20-Poly1305 under a 32-byte [`SecretKey`] that lives
//! outside the database (`<data>/secret-key` or `LIFTOFF_SECRET_KEY`): stored as
//! `enc:v1:<key id>:<base64 of nonce and ciphertext>`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// `n` random bytes from the operating system's CSPRNG, base64url without padding.
pub fn random_token(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A short random identifier for rows (keys, users, sessions): 16 hex characters.
pub fn random_id() -> String {
    let mut bytes = [0u8; 8];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// SHA-256 of a secret, as lowercase hex: what the stores keep instead of the secret.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TokenDigest(String);

impl TokenDigest {
    pub fn of(secret: &str) -> Self {
        Self(hex::encode(Sha256::digest(secret.as_bytes())))
    }

    /// Rebuilds a digest read back from storage.
    pub fn from_stored(hex: String) -> Self {
        Self(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Compares two secrets in constant time (CSRF tokens, bootstrap tokens).
pub fn secrets_equal(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Marks a sealed value; the version names the cipher and layout.
pub const SEALED_PREFIX: &str = "enc:v1:";
const NONCE_LEN: usize = 12;

/// A 32-byte key for sealing secrets at rest. Its id (8 hex characters of a SHA-256 of the
/// key) is stored with every sealed value, so the key a value needs can be named.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey {
    bytes: [u8; 32],
    id: String,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({})", self.id)
    }
}

impl SecretKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let mut h = Sha256::new();
        h.update(b"liftoff secret key id\0");
        h.update(bytes);
        let id = hex::encode(&h.finalize()[..4]);
        Self { bytes, id }
    }

    /// A new random key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self::from_bytes(bytes)
    }

    /// Reads a key written as base64 (standard or URL-safe, padded or not) or 64 hex digits.
    pub fn parse(text: &str) -> Result<Self, String> {
        use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE};
        let text = text.trim();
        let decoded = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).ok()
        } else {
            [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
                .iter()
                .find_map(|e| e.decode(text).ok())
        };
        decoded
            .and_then(|d| <[u8; 32]>::try_from(d.as_slice()).ok())
            .map(Self::from_bytes)
            .ok_or_else(|| {
                "a secret key must be 32 bytes written as base64 or 64 hex digits; generate one with `openssl rand -base64 32`".to_owned()
            })
    }

    /// The key as standard base64, the form `<data>/secret-key` holds.
    pub fn encode(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.bytes)
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error(
        "the secret was sealed with key {0}, which this server does not have (set LIFTOFF_SECRET_KEY or restore <data>/secret-key)"
    )]
    UnknownKey(String),
    #[error("the sealed secret is damaged or was not sealed with key {0}")]
    Corrupt(String),
}

/// Seals with one key and opens with it or any older key it was given (a rotation that was
/// interrupted, or a key being replaced).
#[derive(Clone, Debug)]
pub struct SecretBox {
    primary: SecretKey,
    others: Vec<SecretKey>,
}

impl SecretBox {
    pub fn new(primary: SecretKey) -> Self {
        Self {
            primary,
            others: Vec::new(),
        }
    }

    /// Also opens values sealed with `key`.
    pub fn also_opening(mut self, key: SecretKey) -> Self {
        if key != self.primary && !self.others.contains(&key) {
            self.others.push(key);
        }
        self
    }

    pub fn primary(&self) -> &SecretKey {
        &self.primary
    }

    /// Whether `stored` is a sealed value (anything else is a plaintext from before sealing).
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(SEALED_PREFIX)
    }

    /// The id of the key `stored` was sealed with.
    pub fn key_id(stored: &str) -> Option<&str> {
        stored.strip_prefix(SEALED_PREFIX)?.split(':').next()
    }

    fn aad(id: &str) -> Vec<u8> {
        format!("{SEALED_PREFIX}{id}").into_bytes()
    }

    /// Seals `plaintext` under the primary key with a fresh random nonce.
    pub fn seal(&self, plaintext: &str) -> String {
        use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
        let cipher = chacha20poly1305::ChaCha20Poly1305::new((&self.primary.bytes).into());
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let aad = Self::aad(&self.primary.id);
        // Encryption with a valid key and nonce cannot fail for inputs this small.
        let sealed = cipher
            .encrypt(
                (&nonce).into(),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: &aad,
                },
            )
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!(
            "{SEALED_PREFIX}{}:{}",
            self.primary.id,
            base64::engine::general_purpose::STANDARD.encode(out)
        )
    }

    /// Opens a sealed value with whichever known key sealed it.
    pub fn open(&self, stored: &str) -> Result<String, SealError> {
        use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
        let rest = stored
            .strip_prefix(SEALED_PREFIX)
            .ok_or_else(|| SealError::Corrupt("(none)".into()))?;
        let (id, data) = rest
            .split_once(':')
            .ok_or_else(|| SealError::Corrupt("(none)".into()))?;
        let key = std::iter::once(&self.primary)
            .chain(&self.others)
            .find(|k| k.id == id)
            .ok_or_else(|| SealError::UnknownKey(id.to_owned()))?;
        let corrupt = || SealError::Corrupt(id.to_owned());
        let data = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|_| corrupt())?;
        if data.len() < NONCE_LEN {
            return Err(corrupt());
        }
        let (nonce, ciphertext) = data.split_at(NONCE_LEN);
        let cipher = chacha20poly1305::ChaCha20Poly1305::new((&key.bytes).into());
        let aad = Self::aad(id);
        let plain = cipher
            .decrypt(
                nonce.into(),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| corrupt())?;
        String::from_utf8(plain).map_err(|_| corrupt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_with_their_key_only() {
        let k = SecretKey::generate();
        let b = SecretBox::new(k.clone());
        let s = b.seal("https://hooks.slack.com/services/T0/B0/secret");
        assert!(SecretBox::is_sealed(&s));
        assert!(!s.contains("hooks.slack.com"));
        assert_eq!(SecretBox::key_id(&s), Some(k.id()));
        assert_ne!(
            s,
            b.seal("https://hooks.slack.com/services/T0/B0/secret"),
            "fresh nonce"
        );
        assert_eq!(
            b.open(&s).as_deref(),
            Ok("https://hooks.slack.com/services/T0/B0/secret")
        );
        let other = SecretBox::new(SecretKey::generate());
        assert!(matches!(other.open(&s), Err(SealError::UnknownKey(_))));
        // An older key still opens what it sealed.
        let rotated = SecretBox::new(SecretKey::generate()).also_opening(k.clone());
        assert!(rotated.open(&s).is_ok());
        assert!(SecretBox::key_id(&rotated.seal("x")) != Some(k.id()));
        // A changed byte is refused, not misread.
        let mut damaged = s.clone().into_bytes();
        let last = damaged.len() - 3;
        damaged[last] = if damaged[last] == b'A' { b'B' } else { b'A' };
        let damaged = String::from_utf8(damaged).unwrap_or_default();
        assert!(matches!(b.open(&damaged), Err(SealError::Corrupt(_))));
        assert!(b.open("plain").is_err());
    }

    #[test]
    fn keys_parse_from_base64_or_hex() {
        let k = SecretKey::generate();
        assert_eq!(SecretKey::parse(&k.encode()), Ok(k.clone()));
        assert_eq!(
            SecretKey::parse(&format!(" {}\n", k.encode())),
            Ok(k.clone())
        );
        assert_eq!(SecretKey::parse(&hex::encode(k.bytes)), Ok(k.clone()));
        assert_eq!(
            SecretKey::parse(&URL_SAFE_NO_PAD.encode(k.bytes)),
            Ok(k.clone())
        );
        assert!(SecretKey::parse("c2hvcnQ=").is_err());
        assert!(SecretKey::parse("not a key").is_err());
        assert!(!format!("{k:?}").contains(&k.encode()));
    }

    #[test]
    fn digest_is_sha256_hex() {
        assert_eq!(
            TokenDigest::of("abc").as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn tokens_are_random_and_sized() {
        let a = random_token(32);
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token(32));
        assert!(secrets_equal(&a, &a.clone()));
        assert!(!secrets_equal(&a, "x"));
    }
}
