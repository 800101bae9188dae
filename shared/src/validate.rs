//! Input rules of docs/API-GUIDE.md's "Limits" and "Authentication" sections, as functions that
//! return clean values or a `validation_failed` naming the field.

use crate::error::ApiError;

pub const USERNAME_LEN: std::ops::RangeInclusive<usize> = 3..=32;
pub const PASSWORD_LEN: std::ops::RangeInclusive<usize> = 8..=128;
pub const DISPLAY_NAME_LEN: std::ops::RangeInclusive<usize> = 1..=64;
pub const STATUS_TEXT_MAX: usize = 140;

/// Case-folds and checks a username: 3..=32 of `[a-z0-9_.-]`.
pub fn username(raw: &str) -> Result<String, ApiError> {
    let name = raw.trim().to_lowercase();
    let len = name.chars().count();
    if !USERNAME_LEN.contains(&len) {
        return Err(ApiError::invalid("username", "must be 3 to 32 characters long"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c))
    {
        return Err(ApiError::invalid(
            "username",
            "may contain only letters a-z, digits, '_', '.' and '-'",
        ));
    }
    Ok(name)
}

pub fn password(raw: &str) -> Result<(), ApiError> {
    if !PASSWORD_LEN.contains(&raw.chars().count()) {
        return Err(ApiError::invalid("password", "must be 8 to 128 characters long"));
    }
    Ok(())
}

/// Trims `raw` and checks its length in Unicode scalar values and that it has no control characters
/// other than newline and tab.
pub fn text(field: &str, raw: &str, len: std::ops::RangeInclusive<usize>) -> Result<String, ApiError> {
    let value = raw.trim();
    if let Some(bad) = value.chars().find(|c| c.is_control() && *c != '\n' && *c != '\t') {
        return Err(ApiError::invalid(
            field,
            format!("must not contain control characters (found U+{:04X})", bad as u32),
        ));
    }
    let count = value.chars().count();
    if !len.contains(&count) {
        let problem = if count == 0 && *len.start() > 0 {
            "must not be empty".to_owned()
        } else {
            format!("must be {} to {} characters long", len.start(), len.end())
        };
        return Err(ApiError::invalid(field, problem));
    }
    Ok(value.to_owned())
}

/// Unicode's explicit directional formatting characters and marks (the "Trojan Source" set, CVE-2021-42574):
/// in a name they reorder what other people see, so `invoice<U+202E>fdp.exe` shows as `invoiceexe.pdf`.
/// Right-to-left scripts need none of them: the bidirectional algorithm orders their letters itself.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Refuses a name (a display name, a conversation's name, a file name) with a bidirectional control.
pub fn no_bidi_controls(field: &str, value: &str) -> Result<(), ApiError> {
    match value.chars().find(|c| is_bidi_control(*c)) {
        Some(bad) => Err(ApiError::invalid(
            field,
            format!(
                "must not contain bidirectional control characters, which change how others see it (found U+{:04X})",
                bad as u32
            ),
        )),
        None => Ok(()),
    }
}

/// [`text`] for a name people see: no bidirectional controls either.
pub fn name(field: &str, raw: &str, len: std::ops::RangeInclusive<usize>) -> Result<String, ApiError> {
    let value = text(field, raw, len)?;
    no_bidi_controls(field, &value)?;
    Ok(value)
}

pub fn display_name(raw: &str) -> Result<String, ApiError> {
    name("displayName", raw, DISPLAY_NAME_LEN)
}

/// A ULID as the API's ids are: 26 characters of Crockford base32. Returned in canonical (upper) case.
pub fn ulid(field: &str, raw: &str) -> Result<String, ApiError> {
    ulid::Ulid::from_string(raw)
        .map(|id| id.to_string())
        .map_err(|_| ApiError::invalid(field, "must be a ULID (26 characters of Crockford base32)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_case_folded_and_checked() {
        assert_eq!(username("Alice_01").unwrap(), "alice_01");
        assert!(username("ab").is_err());
        assert!(username(&"a".repeat(33)).is_err());
        assert!(username("al ice").is_err());
        assert!(username("al!ce").is_err());
        assert!(username("ålice").is_err());
    }

    #[test]
    fn text_counts_scalars_and_rejects_controls() {
        assert_eq!(display_name("  Zoë \t").unwrap(), "Zoë");
        assert_eq!(display_name(&"é".repeat(64)).unwrap().chars().count(), 64);
        assert!(display_name(&"é".repeat(65)).is_err());
        assert!(display_name("   ").is_err());
        assert!(display_name("bell\u{7}").is_err());
        assert!(text("t", "line\nnext\tcol", 1..=20).is_ok());
    }

    #[test]
    fn names_refuse_bidirectional_controls_but_keep_right_to_left_scripts() {
        for control in [
            '\u{061C}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202E}', '\u{2066}', '\u{2069}',
        ] {
            let error = display_name(&format!("invoice{control}fdp.exe")).unwrap_err();
            assert!(format!("{error:?}").contains("bidirectional"), "{control:?}: {error:?}");
            assert!(name("name", &format!("a{control}b"), 1..=10).is_err());
        }
        assert_eq!(display_name("שלום עולם").unwrap(), "שלום עולם");
        assert_eq!(display_name("مرحبا Zoë").unwrap(), "مرحبا Zoë");
        // Message bodies may carry marks (a right-to-left reply quoting a left-to-right word).
        assert!(text("body", "\u{200F}שלום", 1..=10).is_ok());
    }

    #[test]
    fn passwords_have_bounds() {
        assert!(password("1234567").is_err());
        assert!(password("12345678").is_ok());
        assert!(password(&"p".repeat(129)).is_err());
    }

    #[test]
    fn ulids_are_canonicalised() {
        let id = ulid::Ulid::generate().to_string();
        assert_eq!(ulid("id", &id.to_lowercase()).unwrap(), id);
        assert!(ulid("id", "not-a-ulid").is_err());
    }
}

/// Gathers the problems of several fields, so one response names them all.
#[derive(Default)]
pub struct Problems(Vec<crate::error::FieldProblem>);

impl Problems {
    /// The value if `result` is Ok; otherwise records its problems and returns `None`.
    pub fn check<T>(&mut self, result: Result<T, ApiError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(ApiError::Validation { details, .. }) => {
                self.0.extend(details);
                None
            }
            Err(_) => None,
        }
    }

    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            return Ok(());
        }
        let message = self
            .0
            .iter()
            .map(|p| format!("{}: {}", p.field, p.problem))
            .collect::<Vec<_>>()
            .join("; ");
        Err(ApiError::Validation {
            message,
            details: self.0,
        })
    }
}
