//! `qty`: an amount as a decimal string, never a float.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A non-negative decimal amount kept exactly as sent (`"1.500000000000000000"`).
///
/// Amounts of money are never parsed into floats; a JSON number is rejected so that
/// a sender cannot silently lose precision.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Quantity(String);

/// A `qty` that is not a plain decimal string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("quantity must be a decimal string like \"1.5\"")]
pub struct InvalidQuantity;

impl Quantity {
    /// The decimal text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Quantity {
    type Err = InvalidQuantity;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (whole, fraction) = match text.split_once('.') {
            Some((whole, fraction)) => (whole, Some(fraction)),
            None => (text, None),
        };
        let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if digits(whole) && fraction.is_none_or(digits) {
            Ok(Self(text.to_owned()))
        } else {
            Err(InvalidQuantity)
        }
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_decimal_strings_only() {
        for ok in [
            "0",
            "1.5",
            "1.500000000000000000",
            "123456789012345678901234567890",
        ] {
            assert_eq!(
                ok.parse::<Quantity>().map(|q| q.to_string()),
                Ok(ok.to_owned())
            );
        }
        for bad in [
            "", ".", "1.", ".5", "-1", "1e5", "1,5", " 1", "1.2.3", "NaN",
        ] {
            assert_eq!(bad.parse::<Quantity>(), Err(InvalidQuantity), "{bad:?}");
        }
        assert!(
            serde_json::from_str::<Quantity>("1.5").is_err(),
            "a JSON number is refused"
        );
        assert!(serde_json::from_str::<Quantity>("\"1.5\"").is_ok());
    }
}
