//! `webhook keygen`: a new ECDSA P-256 key pair for a domain-style endpoint.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use webhook_core::keys::EcdsaSigningKey;

use crate::Failure;

/// Prints `{"private_key": "<base64 PKCS#8 DER>", "public_key": "<base64 SPKI DER>"}`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn run(_args: &Args) -> Result<(), Failure> {
    let (key, pkcs8) = EcdsaSigningKey::generate().map_err(Failure::failed)?;
    let output = serde_json::json!({
        "private_key": STANDARD.encode(&*pkcs8),
        "public_key": key.public_key().to_spki_base64(),
    });
    println!("{output}");
    Ok(())
}
