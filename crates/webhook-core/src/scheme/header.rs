//! Reading request headers strictly (present once, visible ASCII), and making the values
//! of signed ones.

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::{SignError, VerifyError};

/// A header value for a signed request. Our own encodings (digits, hex, base64) are always
/// valid; anything else is reported as a signing failure rather than a panic.
pub(crate) fn value(text: String) -> Result<HeaderValue, SignError> {
    HeaderValue::try_from(text).map_err(|_| SignError::Crypto)
}

/// The value of a header that must appear at most once.
///
/// # Errors
/// [`VerifyError::DuplicateHeader`] when it appears twice, [`VerifyError::MalformedHeader`]
/// when it is not visible ASCII.
pub(crate) fn optional<'h>(
    headers: &'h HeaderMap,
    name: &'static HeaderName,
) -> Result<Option<&'h str>, VerifyError> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(VerifyError::DuplicateHeader(name.as_str()));
    }
    first
        .to_str()
        .map(|value| Some(value.trim()))
        .map_err(|_| VerifyError::MalformedHeader(name.as_str()))
}

/// The value of a header that must appear exactly once.
///
/// # Errors
/// As [`optional`], plus [`VerifyError::MissingHeader`] when it is absent.
pub(crate) fn required<'h>(
    headers: &'h HeaderMap,
    name: &'static HeaderName,
) -> Result<&'h str, VerifyError> {
    optional(headers, name)?.ok_or(VerifyError::MissingHeader(name.as_str()))
}

/// The signature header's value, or [`VerifyError::MissingSignature`].
pub(crate) fn signature<'h>(
    headers: &'h HeaderMap,
    name: &'static HeaderName,
) -> Result<&'h str, VerifyError> {
    optional(headers, name)?
        .filter(|value| !value.is_empty())
        .ok_or(VerifyError::MissingSignature)
}

/// Splits a signature list, refusing more than [`super::MAX_SIGNATURES`] entries.
pub(crate) fn split_list<'h>(
    value: &'h str,
    separator: char,
    name: &'static HeaderName,
) -> Result<impl Iterator<Item = &'h str>, VerifyError> {
    let entries = move || {
        value
            .split(separator)
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
    };
    if entries().nth(super::MAX_SIGNATURES).is_some() {
        return Err(VerifyError::MalformedHeader(name.as_str()));
    }
    Ok(entries())
}
