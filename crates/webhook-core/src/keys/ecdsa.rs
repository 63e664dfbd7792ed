//! ECDSA P-256 keys for the domain style (SPEC §2).
//!
//! Private keys travel as PKCS#8 DER, public keys as base64 of the SubjectPublicKeyInfo
//! DER, which is what customers are given. ring works with the raw uncompressed point, so
//! this module converts between the two forms. For P-256 with an uncompressed point the SPKI
//! is a fixed 26-byte header followed by the 65-byte point; that header is all we need to
//! know about DER here, so no ASN.1 crate is pulled in.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair as _};
use zeroize::Zeroizing;

use super::decode_base64;
use crate::KeyError;

/// DER header of a SubjectPublicKeyInfo for id-ecPublicKey / prime256v1 with a 65-byte
/// uncompressed point: SEQUENCE { SEQUENCE { OID 1.2.840.10045.2.1, OID 1.2.840.10045.3.1.7 },
/// BIT STRING (0 unused bits) }.
const P256_SPKI_HEADER: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// Length of an uncompressed P-256 point (0x04 || X || Y).
const P256_POINT_LEN: usize = 65;

/// An ECDSA P-256 signing key (one per domain-style endpoint).
///
/// `Debug` prints only the algorithm; the PKCS#8 bytes are zeroized on drop. Cheap to
/// clone: clones share the parsed key pair.
#[derive(Clone)]
pub struct EcdsaSigningKey {
    pkcs8: Arc<Zeroizing<Vec<u8>>>,
    key_pair: Arc<EcdsaKeyPair>,
    rng: SystemRandom,
}

impl EcdsaSigningKey {
    /// Loads a key from PKCS#8 DER (v1 with the public key, or v2), as made by
    /// [`EcdsaSigningKey::generate`], openssl or Python's `cryptography`.
    ///
    /// # Errors
    /// [`KeyError::InvalidEncoding`] when the bytes are not a P-256 PKCS#8 key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        let rng = SystemRandom::new();
        let key_pair =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, der, &rng)
                .map_err(|_| KeyError::InvalidEncoding {
                    what: "ECDSA P-256 private key",
                    encoding: "PKCS#8 document",
                })?;
        Ok(Self {
            pkcs8: Arc::new(Zeroizing::new(der.to_vec())),
            key_pair: Arc::new(key_pair),
            rng,
        })
    }

    /// Loads a key from standard base64 of PKCS#8 DER (the `webhook keygen` form).
    ///
    /// # Errors
    /// [`KeyError`] when the base64 or the key is invalid.
    pub fn from_pkcs8_base64(text: &str) -> Result<Self, KeyError> {
        let der = Zeroizing::new(decode_base64(text, "ECDSA P-256 private key")?);
        Self::from_pkcs8_der(&der)
    }

    /// Generates a new key pair; returns the key and its PKCS#8 DER for storage.
    ///
    /// # Errors
    /// [`KeyError::Generation`] when the system random number generator fails.
    pub fn generate() -> Result<(Self, Zeroizing<Vec<u8>>), KeyError> {
        let rng = SystemRandom::new();
        let document =
            EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
                .map_err(|_| KeyError::Generation)?;
        let der = Zeroizing::new(document.as_ref().to_vec());
        Ok((Self::from_pkcs8_der(&der)?, der))
    }

    /// The PKCS#8 DER of this key, for storing it. Handle with care.
    #[must_use]
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The matching public key.
    #[must_use]
    pub fn public_key(&self) -> EcdsaPublicKey {
        let mut point = [0u8; P256_POINT_LEN];
        point.copy_from_slice(self.key_pair.public_key().as_ref());
        EcdsaPublicKey { point }
    }

    /// Signs `message`, returning the ASN.1 DER signature.
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, crate::SignError> {
        self.key_pair
            .sign(&self.rng, message)
            .map(|sig| sig.as_ref().to_vec())
            .map_err(|_| crate::SignError::Crypto)
    }
}

impl fmt::Debug for EcdsaSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EcdsaSigningKey(ECDSA-P256-SHA256)")
    }
}

/// An ECDSA P-256 public key, as given to customers (base64 SPKI DER).
#[derive(Clone, PartialEq, Eq)]
pub struct EcdsaPublicKey {
    point: [u8; P256_POINT_LEN],
}

impl EcdsaPublicKey {
    /// Parses a SubjectPublicKeyInfo DER with an uncompressed P-256 point.
    ///
    /// ring checks that the point is on the curve when it verifies; an off-curve point
    /// therefore never verifies anything.
    ///
    /// # Errors
    /// [`KeyError::InvalidEncoding`] for anything else (other curves, compressed points).
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        let invalid = KeyError::InvalidEncoding {
            what: "ECDSA P-256 public key",
            encoding: "SubjectPublicKeyInfo with an uncompressed P-256 point",
        };
        let point = der
            .strip_prefix(&P256_SPKI_HEADER[..])
            .filter(|point| point.len() == P256_POINT_LEN && point[0] == 0x04)
            .ok_or(invalid)?;
        let mut out = [0u8; P256_POINT_LEN];
        out.copy_from_slice(point);
        Ok(Self { point: out })
    }

    /// Parses standard base64 of the SPKI DER (starts `MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE`).
    ///
    /// # Errors
    /// [`KeyError`] when the base64 or the key is invalid.
    pub fn from_spki_base64(text: &str) -> Result<Self, KeyError> {
        Self::from_spki_der(&decode_base64(text, "ECDSA P-256 public key")?)
    }

    /// The SPKI DER of this key.
    #[must_use]
    pub fn to_spki_der(&self) -> Vec<u8> {
        let mut der = Vec::with_capacity(P256_SPKI_HEADER.len() + P256_POINT_LEN);
        der.extend_from_slice(&P256_SPKI_HEADER);
        der.extend_from_slice(&self.point);
        der
    }

    /// Standard base64 of the SPKI DER: the form customers are given.
    #[must_use]
    pub fn to_spki_base64(&self) -> String {
        STANDARD.encode(self.to_spki_der())
    }

    /// Whether `signature` (ASN.1 DER) is a valid signature of `message` by this key.
    pub(crate) fn verify(&self, message: &[u8], signature_der: &[u8]) -> bool {
        signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &self.point)
            .verify(message, signature_der)
            .is_ok()
    }
}

impl fmt::Debug for EcdsaPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EcdsaPublicKey({})", self.to_spki_base64())
    }
}
