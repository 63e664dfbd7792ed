//! Key flags shared by the subcommands: `--style` with `--secret` / `--private-key`
//! (signing) or `--secret` / `--public-key` (verifying).

use webhook_core::{SigningKeys, Style, TrustedKeys};

use crate::Failure;

/// `--style` and the keys to sign with (`sign`, `send`).
#[derive(Debug, clap::Args)]
pub(crate) struct SigningArgs {
    /// Wire style: event, domain or standard.
    #[arg(long, value_parser = parse_style)]
    pub(crate) style: Style,
    /// Secret to sign with (repeatable: all sign, as during a rotation). Event style: the
    /// secret text; standard: `whsec_…` (v1) or `whsk_…` (v1a).
    #[arg(long = "secret", value_name = "S")]
    secrets: Vec<String>,
    /// Domain style: base64 PKCS#8 private key (as printed by `webhook keygen`).
    #[arg(long, value_name = "K")]
    private_key: Option<String>,
}

/// `--style` and the keys to verify with (`verify`, `listen`).
#[derive(Debug, clap::Args)]
pub(crate) struct TrustArgs {
    /// Wire style: event, domain or standard.
    #[arg(long, value_parser = parse_style)]
    pub(crate) style: Style,
    /// Secret to verify with (repeatable). Event style: the secret text; standard: `whsec_…`.
    #[arg(long = "secret", value_name = "S")]
    secrets: Vec<String>,
    /// Public key (repeatable). Domain style: base64 SPKI (`webhook keygen`); standard: `whpk_…`.
    #[arg(long = "public-key", value_name = "K")]
    public_keys: Vec<String>,
}

/// Parses a `--style` value.
fn parse_style(text: &str) -> Result<Style, String> {
    text.parse()
        .map_err(|e: webhook_core::scheme::UnknownStyle| e.to_string())
}

impl SigningArgs {
    /// The signing keys: `--secret` (event, standard) or `--private-key` (domain).
    pub(crate) fn keys(&self) -> Result<SigningKeys, Failure> {
        let style = self.style;
        let texts: Vec<&str> = match (style, self.private_key.as_deref()) {
            (Style::Domain, Some(key)) => vec![key],
            (Style::Domain, None) => {
                return Err(Failure::usage("--style domain needs --private-key"));
            }
            (_, Some(_)) => {
                return Err(Failure::usage(format!(
                    "--style {style} signs with --secret, not --private-key"
                )));
            }
            (_, None) => self.secrets.iter().map(String::as_str).collect(),
        };
        if texts.is_empty() {
            return Err(Failure::usage(format!("--style {style} needs --secret")));
        }
        SigningKeys::parse(style, texts).map_err(Failure::usage)
    }
}

impl TrustArgs {
    /// The trusted keys: `--secret` and `--public-key` values.
    pub(crate) fn keys(&self) -> Result<TrustedKeys, Failure> {
        let style = self.style;
        if style == Style::Domain && !self.secrets.is_empty() {
            return Err(Failure::usage(
                "--style domain verifies with --public-key, not --secret",
            ));
        }
        if style == Style::Event && !self.public_keys.is_empty() {
            return Err(Failure::usage(
                "--style event verifies with --secret, not --public-key",
            ));
        }
        let texts: Vec<&str> = self
            .secrets
            .iter()
            .chain(&self.public_keys)
            .map(String::as_str)
            .collect();
        if texts.is_empty() {
            return Err(Failure::usage(format!(
                "--style {style} needs at least one {}",
                if style == Style::Domain {
                    "--public-key"
                } else {
                    "--secret"
                }
            )));
        }
        TrustedKeys::parse(style, texts).map_err(Failure::usage)
    }
}
