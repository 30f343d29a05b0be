//! SQL identifiers that come from topic and field names. Every one is validated and then quoted
//! with backticks; since a valid identifier contains no backtick, quoting cannot be escaped and a
//! hostile topic or field name cannot inject SQL.
//!
//! A mirror table name from `table.name.format` longer than MariaDB's 64 characters (a topic of a
//! long source table name plus a prefix) is shortened to its first 55 characters, `_` and 8 hex
//! digits of a hash of the whole name (FNV-1a, folded to 32 bits), so it stays distinct and the
//! same on every run; the mapping is logged once per process.

use std::fmt;

/// Longest identifier MariaDB accepts.
pub const MAX_IDENTIFIER_LEN: usize = 64;

/// Why a name cannot be a table or column name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{shown}` cannot be used as a table or column name: {reason}")]
pub struct IdentError {
    shown: String,
    reason: &'static str,
}

/// Checks a table or column name: 1 to 64 characters, no backtick, quote, backslash, NUL or
/// control character, no trailing space (MariaDB strips it).
pub fn validate_identifier(name: &str) -> Result<(), IdentError> {
    let err = |reason| IdentError {
        shown: name.escape_debug().take(80).collect(),
        reason,
    };
    if name.is_empty() {
        return Err(err("it is empty"));
    }
    if name.chars().count() > MAX_IDENTIFIER_LEN {
        return Err(err(
            "it is longer than 64 characters; set table.name.format to a shorter name",
        ));
    }
    if name
        .chars()
        .any(|c| matches!(c, '`' | '"' | '\'' | '\\') || c.is_control())
    {
        return Err(err("it contains a quote, backslash or control character"));
    }
    if name.ends_with(' ') {
        return Err(err("it ends with a space"));
    }
    Ok(())
}

/// A validated identifier; `Display` writes it quoted. Cloning it (one per change) is cheap.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ident(std::sync::Arc<str>);

impl Ident {
    pub fn new(name: &str) -> Result<Ident, IdentError> {
        validate_identifier(name)?;
        Ok(Ident(name.into()))
    }

    /// The name unquoted (for `information_schema` comparisons and logs).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`", self.0)
    }
}

/// `table.name.format`: text with `${topic}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableNameFormat(String);

impl TableNameFormat {
    pub fn parse(format: &str) -> Result<TableNameFormat, String> {
        let without = format.replace("${topic}", "");
        if without.contains("${") {
            return Err(format!(
                "{format:?} has a placeholder other than ${{topic}}"
            ));
        }
        Ok(TableNameFormat(format.to_string()))
    }

    /// The table for `topic`, validated; shortened when longer than 64 characters (see the
    /// module docs).
    pub fn table_for(&self, topic: &str) -> Result<Ident, IdentError> {
        let name = self.0.replace("${topic}", topic);
        if name.chars().count() <= MAX_IDENTIFIER_LEN {
            return Ident::new(&name);
        }
        let short = shortened(&name);
        let ident = Ident::new(&short)?;
        static LOGGED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
        let mut logged = LOGGED.lock().unwrap_or_else(|e| e.into_inner());
        if !logged.contains(&name) {
            tracing::warn!(topic, table = %short, "mirror table name from table.name.format is longer than 64 characters: shortened with a hash of the whole name");
            logged.push(name);
        }
        Ok(ident)
    }
}

/// `name` cut to 55 characters, `_` and the 8 hex digits of its hash: 64 characters.
fn shortened(name: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let folded = (hash >> 32) as u32 ^ hash as u32;
    let head: String = name.chars().take(MAX_IDENTIFIER_LEN - 9).collect();
    format!("{head}_{folded:08x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_valid_names() {
        assert_eq!(
            Ident::new("my_topic_users").unwrap().to_string(),
            "`my_topic_users`"
        );
        assert_eq!(
            Ident::new("naïve name-1.x").unwrap().to_string(),
            "`naïve name-1.x`"
        );
    }

    #[test]
    fn rejects_hostile_names() {
        for bad in [
            "a`; DROP TABLE t; --",
            "x'",
            "a\"b",
            "a\\b",
            "a\0b",
            "a\nb",
            "",
            "t ",
            &"x".repeat(65),
        ] {
            assert!(Ident::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn table_name_format() {
        let f = TableNameFormat::parse("mirror_${topic}").unwrap();
        assert_eq!(f.table_for("users").unwrap().as_str(), "mirror_users");
        assert!(TableNameFormat::parse("${kafka}").is_err());
        assert!(f.table_for("a`b").is_err());
    }

    #[test]
    fn long_table_names_are_shortened_distinctly_and_stably() {
        let f = TableNameFormat::parse("${topic}").unwrap();
        let a = f.table_for(&format!("my_topic_{}", "a".repeat(64))).unwrap();
        let b = f.table_for(&format!("my_topic_{}b", "a".repeat(63))).unwrap();
        assert_eq!(a.as_str().chars().count(), 64);
        assert!(a.as_str().starts_with("my_topic_aaaa"), "{a}");
        assert_ne!(a, b);
        assert_eq!(a, f.table_for(&format!("my_topic_{}", "a".repeat(64))).unwrap());
        assert_eq!(shortened(&"x".repeat(70)), format!("{}_{}", "x".repeat(55), &shortened(&"x".repeat(70))[56..]));
        assert_eq!(f.table_for(&"y".repeat(64)).unwrap().as_str(), "y".repeat(64), "64 characters stay");
        // Unicode counts in characters, as MariaDB does.
        assert_eq!(f.table_for(&"é".repeat(80)).unwrap().as_str().chars().count(), 64);
    }
}
