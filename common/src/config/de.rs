//! A serde deserializer over the flat `key → string` map that every config source is reduced to.
//!
//! Kafka Connect configs carry every value as a string (`"true"`, `"3000"`), TOML carries typed
//! values, environment variables carry strings. All three are normalised to strings first
//! (see [`crate::config`]), and this deserializer parses each string into the type of the target
//! field, naming the key when it cannot. Lists are comma-separated, as in Kafka Connect
//! (`topics = "a,b"`; a TOML array is joined the same way before it gets here).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};

/// A deserialization failure; the message names the key.
#[derive(Debug)]
pub(crate) struct DeError(pub(crate) String);

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError(msg.to_string())
    }
}

/// Deserializes `T` from the flat map. Unknown keys must have been removed beforehand.
pub(crate) fn from_flat_map<T: DeserializeOwned>(
    map: &BTreeMap<String, String>,
) -> Result<T, DeError> {
    let entries = map
        .iter()
        .map(|(k, v)| (k.as_str(), Value { key: k, raw: v }));
    let deserializer = de::value::MapDeserializer::new(entries);
    T::deserialize(deserializer)
}

/// The field names a config struct declares (its `#[serde(rename)]` spellings), found by asking
/// the struct to deserialize itself from a probe that records the names and then gives up.
pub(crate) fn struct_fields<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Probe<'a>(&'a mut &'static [&'static str]);
    impl<'de> de::Deserializer<'de> for Probe<'_> {
        type Error = DeError;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, DeError> {
            Err(DeError("config type is not a struct".into()))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, DeError> {
            *self.0 = fields;
            Err(DeError("probe".into()))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

/// One value of the flat map, with its key for error messages.
#[derive(Debug, Clone, Copy)]
struct Value<'a> {
    key: &'a str,
    raw: &'a str,
}

impl Value<'_> {
    fn invalid(&self, expected: &str) -> DeError {
        DeError(format!(
            "config key `{}`: {:?} is not {expected}",
            self.key, self.raw
        ))
    }

    fn parse<T: std::str::FromStr>(&self, expected: &str) -> Result<T, DeError> {
        self.raw.trim().parse().map_err(|_| self.invalid(expected))
    }
}

impl<'de> IntoDeserializer<'de, DeError> for Value<'de> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

macro_rules! parse_number {
    ($($method:ident $visit:ident $ty:ty, $what:literal;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            visitor.$visit(self.parse::<$ty>($what)?)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Value<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_borrowed_str(self.raw)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.raw.trim().to_ascii_lowercase().as_str() {
            "true" => visitor.visit_bool(true),
            "false" => visitor.visit_bool(false),
            _ => Err(self.invalid("a boolean (use true or false)")),
        }
    }

    parse_number! {
        deserialize_i8 visit_i8 i8, "an integer";
        deserialize_i16 visit_i16 i16, "an integer";
        deserialize_i32 visit_i32 i32, "an integer";
        deserialize_i64 visit_i64 i64, "an integer";
        deserialize_u8 visit_u8 u8, "a non-negative integer";
        deserialize_u16 visit_u16 u16, "a non-negative integer";
        deserialize_u32 visit_u32 u32, "a non-negative integer";
        deserialize_u64 visit_u64 u64, "a non-negative integer";
        deserialize_f32 visit_f32 f32, "a number";
        deserialize_f64 visit_f64 f64, "a number";
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let items = self
            .raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|raw| Value { key: self.key, raw });
        visitor.visit_seq(de::value::SeqDeserializer::new(items))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let raw = self.raw.trim();
        if !variants.contains(&raw) {
            return Err(self.invalid(&format!("one of: {}", variants.join(", "))));
        }
        visitor.visit_enum(raw.into_deserializer())
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char str string bytes byte_buf unit unit_struct tuple tuple_struct map struct
        identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        Upsert,
        Insert,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Sample {
        #[serde(rename = "batch.size")]
        batch_size: u32,
        #[serde(rename = "auto.create", default)]
        auto_create: bool,
        #[serde(rename = "insert.mode")]
        mode: Mode,
        topics: Vec<String>,
        #[serde(rename = "pk.fields", default)]
        pk_fields: Option<Vec<String>>,
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_strings_into_typed_fields() {
        let m = map(&[
            ("batch.size", "3000"),
            ("auto.create", "TRUE"),
            ("insert.mode", "insert"),
            ("topics", "a, b,,c"),
        ]);
        let s: Sample = from_flat_map(&m).unwrap();
        assert_eq!(s.batch_size, 3000);
        assert!(s.auto_create);
        assert_eq!(s.mode, Mode::Insert);
        assert_eq!(s.topics, vec!["a", "b", "c"]);
        assert_eq!(s.pk_fields, None);
    }

    #[test]
    fn errors_name_the_key() {
        let m = map(&[
            ("batch.size", "many"),
            ("insert.mode", "upsert"),
            ("topics", "a"),
        ]);
        let e = from_flat_map::<Sample>(&m).unwrap_err().to_string();
        assert!(e.contains("`batch.size`"), "{e}");
        let m = map(&[
            ("batch.size", "1"),
            ("insert.mode", "merge"),
            ("topics", "a"),
        ]);
        let e = from_flat_map::<Sample>(&m).unwrap_err().to_string();
        assert!(
            e.contains("`insert.mode`") && e.contains("upsert, insert"),
            "{e}"
        );
        let m = map(&[("batch.size", "1"), ("insert.mode", "upsert")]);
        let e = from_flat_map::<Sample>(&m).unwrap_err().to_string();
        assert!(e.contains("topics"), "{e}");
    }

    #[test]
    fn probe_lists_renamed_fields() {
        let fields = struct_fields::<Sample>();
        assert_eq!(
            fields,
            &[
                "batch.size",
                "auto.create",
                "insert.mode",
                "topics",
                "pk.fields"
            ]
        );
    }
}
