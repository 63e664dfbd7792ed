//! Redaction (SPEC §1): what is removed from a payload before it leaves the sender.
//!
//! By default every e-mail address anywhere in the payload (in any string value, at any
//! depth) is masked to `j***@example.com`, and fields whose names start with `internal`
//! or are exactly `metadata` (both case-insensitive) are dropped. Rules can be replaced
//! per event type or domain, for events that need a field (say, `customer.created`
//! delivering the full e-mail to a verified CRM integration).
//!
//! ```
//! use serde_json::json;
//! use webhook_core::redaction::{Redactor, RedactionRules};
//!
//! let redactor = Redactor::default();
//! let mut data = json!({"email": "jane.doe@example.com", "internalScore": 7,
//!                       "profile": {"metadata": {"x": 1}, "note": "write to bob@corp.io"}});
//! redactor.redact("customer.created", &mut data);
//! assert_eq!(data, json!({"email": "j***@example.com",
//!                         "profile": {"note": "write to b***@corp.io"}}));
//!
//! let keep_email = Redactor::default().with_rules("customer.created", RedactionRules {
//!     mask_emails: false, ..RedactionRules::default() });
//! let mut data = json!({"email": "jane@example.com"});
//! keep_email.redact("customer.created", &mut data);
//! assert_eq!(data["email"], "jane@example.com");
//! ```

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::Value;

/// Which fields a rule drops, compared ASCII case-insensitively with field names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldPattern {
    /// The whole name equals this.
    Exact(String),
    /// The name starts with this.
    Prefix(String),
}

impl FieldPattern {
    fn matches(&self, name: &str) -> bool {
        match self {
            Self::Exact(exact) => name.eq_ignore_ascii_case(exact),
            Self::Prefix(prefix) => name
                .get(..prefix.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(prefix)),
        }
    }
}

/// The redaction applied to one kind of event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedactionRules {
    /// Mask e-mail addresses in every string value. Default: true.
    pub mask_emails: bool,
    /// Fields dropped wherever they appear. Default: `internal*` and `metadata`.
    pub drop_fields: Vec<FieldPattern>,
}

impl Default for RedactionRules {
    fn default() -> Self {
        Self {
            mask_emails: true,
            drop_fields: vec![
                FieldPattern::Prefix("internal".into()),
                FieldPattern::Exact("metadata".into()),
            ],
        }
    }
}

impl RedactionRules {
    /// Rules that change nothing.
    #[must_use]
    pub fn none() -> Self {
        Self {
            mask_emails: false,
            drop_fields: Vec::new(),
        }
    }

    /// Applies these rules to `value` in place.
    pub fn apply(&self, value: &mut Value) {
        if self.mask_emails || !self.drop_fields.is_empty() {
            self.apply_to(value);
        }
    }

    /// [`RedactionRules::apply`] on rules that may change something: walks the tree.
    fn apply_to(&self, value: &mut Value) {
        match value {
            Value::String(text) if self.mask_emails => {
                if let Cow::Owned(masked) = mask_emails(text) {
                    *text = masked;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.apply_to(item)),
            Value::Object(fields) => {
                fields.retain(|name, _| !self.drop_fields.iter().any(|p| p.matches(name)));
                fields.values_mut().for_each(|field| self.apply_to(field));
            }
            _ => {}
        }
    }
}

/// Redaction rules by event type (or domain), with a default for every other kind.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    default: RedactionRules,
    by_kind: HashMap<String, RedactionRules>,
}

impl Redactor {
    /// A redactor applying `default` to every kind.
    #[must_use]
    pub fn new(default: RedactionRules) -> Self {
        Self {
            default,
            by_kind: HashMap::new(),
        }
    }

    /// Uses `rules` instead of the default for `kind` (an event type or a domain).
    #[must_use]
    pub fn with_rules(mut self, kind: impl Into<String>, rules: RedactionRules) -> Self {
        self.by_kind.insert(kind.into(), rules);
        self
    }

    /// The rules for `kind`.
    #[must_use]
    pub fn rules_for(&self, kind: &str) -> &RedactionRules {
        self.by_kind.get(kind).unwrap_or(&self.default)
    }

    /// Redacts `value` in place with the rules for `kind`.
    pub fn redact(&self, kind: &str, value: &mut Value) {
        self.rules_for(kind).apply(value);
    }
}

// Bytes >= 0x80 belong to non-ASCII characters (internationalized addresses); accepting
// all of them keeps every cut on an ASCII boundary, hence on a `char` boundary.
fn is_local_char(b: u8) -> bool {
    !b.is_ascii() || b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_domain_char(b: u8) -> bool {
    !b.is_ascii() || b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')
}

/// Masks every e-mail address in `text`: `jane.doe@example.com` becomes `j***@example.com`.
/// Returns the input unchanged (borrowed) when it holds no address.
#[must_use]
pub fn mask_emails(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut search = 0;
    while let Some(offset) = bytes[search..].iter().position(|&b| b == b'@') {
        let at = search + offset;
        search = at + 1;
        let mut start = at;
        while start > copied && is_local_char(bytes[start - 1]) {
            start -= 1;
        }
        let mut end = at + 1;
        while end < bytes.len() && is_domain_char(bytes[end]) {
            end += 1;
        }
        while end > at + 1 && matches!(bytes[end - 1], b'.' | b'-') {
            end -= 1;
        }
        let domain = &text[at + 1..end];
        let plausible = start < at
            && domain.contains('.')
            && !domain.starts_with(['.', '-'])
            && !domain.contains("..");
        if !plausible {
            continue;
        }
        let masked = out.get_or_insert_with(|| String::with_capacity(text.len()));
        masked.push_str(&text[copied..start]);
        masked.extend(text[start..].chars().next());
        masked.push_str("***@");
        masked.push_str(domain);
        copied = end;
        search = end;
    }
    match out {
        Some(mut masked) => {
            masked.push_str(&text[copied..]);
            Cow::Owned(masked)
        }
        None => Cow::Borrowed(text),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn masks_addresses_and_leaves_the_rest() {
        let cases = [
            ("john@example.com", "j***@example.com"),
            ("John.Doe+tag@mail.example.co.uk", "J***@mail.example.co.uk"),
            ("a@b.io and c.d@e.org.", "a***@b.io and c***@e.org."),
            ("<x_y@z.com>", "<x***@z.com>"),
            ("café jörg@exämple.com ok", "café j***@exämple.com ok"),
            ("ö@example.com", "ö***@example.com"),
        ];
        for (input, expected) in cases {
            assert_eq!(mask_emails(input), expected, "{input}");
        }
        for untouched in [
            "no at sign",
            "@handle",
            "user@localhost",
            "a@.com",
            "x@y..z",
            "",
            "@",
        ] {
            assert!(
                matches!(mask_emails(untouched), Cow::Borrowed(_)),
                "{untouched}"
            );
        }
    }

    #[test]
    fn drops_fields_at_any_depth_case_insensitively() {
        let mut value = json!({"InternalId": 1, "internal_notes": "x", "Metadata": {}, "meta": 2,
            "items": [{"metadata": 1, "keep": "a@b.co"}], "internalish": true});
        RedactionRules::default().apply(&mut value);
        assert_eq!(value, json!({"meta": 2, "items": [{"keep": "a***@b.co"}]}));
    }

    #[test]
    fn per_kind_rules_replace_the_default() {
        let redactor = Redactor::default().with_rules("wallet.created", RedactionRules::none());
        let original = json!({"email": "a@b.co", "metadata": 1});
        let mut untouched = original.clone();
        redactor.redact("wallet.created", &mut untouched);
        assert_eq!(untouched, original);
        let mut redacted = original;
        redactor.redact("customer.created", &mut redacted);
        assert_eq!(redacted, json!({"email": "a***@b.co"}));
    }
}
