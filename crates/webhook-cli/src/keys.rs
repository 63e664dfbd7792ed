//! Key flags shared by the subcommands: `--style`, `--secret`, `--private-key`, `--public-key`.

use webhook_core::{SigningKeys, Style, TrustedKeys};

use crate::Failure;

/// Parses a `--style` value.
pub(crate) fn parse_style(text: &str) -> Result<Style, String> {
    text.parse()
        .map_err(|e: webhook_core::scheme::UnknownStyle| e.to_string())
}

/// The signing keys for `style` from `--secret` (event, standard) or `--private-key` (domain).
pub(crate) fn signing_keys(
    style: Style,
    secrets: &[String],
    private_key: Option<&str>,
) -> Result<SigningKeys, Failure> {
    let texts: Vec<&str> = match (style, private_key) {
        (Style::Domain, Some(key)) => vec![key],
        (Style::Domain, None) => return Err(Failure::usage("--style domain needs --private-key")),
        (_, Some(_)) => {
            return Err(Failure::usage(format!(
                "--style {style} signs with --secret, not --private-key"
            )));
        }
        (_, None) => secrets.iter().map(String::as_str).collect(),
    };
    if texts.is_empty() {
        return Err(Failure::usage(format!("--style {style} needs --secret")));
    }
    SigningKeys::parse(style, texts).map_err(Failure::usage)
}

/// The trusted keys for `style` from `--secret` and `--public-key` values.
pub(crate) fn trusted_keys(
    style: Style,
    secrets: &[String],
    public_keys: &[String],
) -> Result<TrustedKeys, Failure> {
    if style == Style::Domain && !secrets.is_empty() {
        return Err(Failure::usage(
            "--style domain verifies with --public-key, not --secret",
        ));
    }
    if style == Style::Event && !public_keys.is_empty() {
        return Err(Failure::usage(
            "--style event verifies with --secret, not --public-key",
        ));
    }
    let texts: Vec<&str> = secrets
        .iter()
        .chain(public_keys)
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
