//! JSON readers that accept a value of any shape and keep only what they understand.
//!
//! A proxy in series must not fail a call because a field it merely peeks at has an unexpected
//! type: that is the provider's call to make. Derived serde structs reject the whole document on
//! the first type mismatch, so the few fields Rungate reads go through these readers instead, and
//! the caller decides afterwards (with the field name in hand) whether a mismatch matters.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A string that borrows from the input when it has no escapes (serde's own `Cow<str>` always
/// allocates).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CowStr<'a>(pub(crate) Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for CowStr<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(V)
    }
}

/// Any JSON value, reduced to what a scalar field check needs: the value when it is a scalar,
/// just the kind when it is a container (whose contents are skipped, not built).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar<'a> {
    Null,
    Bool(bool),
    Unsigned(u64),
    Negative(i64),
    Float(f64),
    Str(Cow<'a, str>),
    Array,
    Object,
}

impl Scalar<'_> {
    /// The JSON kind, for error messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Scalar::Null => "null",
            Scalar::Bool(_) => "a boolean",
            Scalar::Unsigned(_) | Scalar::Negative(_) | Scalar::Float(_) => "a number",
            Scalar::Str(_) => "a string",
            Scalar::Array => "an array",
            Scalar::Object => "an object",
        }
    }

    /// The string, if this is one.
    pub(crate) fn into_string(self) -> Option<String> {
        match self {
            Scalar::Str(s) => Some(s.into_owned()),
            _ => None,
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar::Unsigned(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(u64::try_from(v).map_or(Scalar::Negative(v), Scalar::Unsigned))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Float(v))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Array)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Object)
    }
}

/// A token count: a non-negative integer (an integral float is accepted too); anything else
/// reads as "not given" rather than failing the document around it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Count(pub(crate) Option<u64>);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Scalar::deserialize(deserializer)?;
        Ok(Count(match value {
            Scalar::Unsigned(n) => Some(n),
            Scalar::Float(f) if f.is_finite() && f >= 0.0 && f.fract() == 0.0 => {
                // Integral and non-negative: the conversion saturates at u64::MAX, never wraps.
                Some(f as u64)
            }
            _ => None,
        }))
    }
}

/// The number of elements of an array, skipping their contents; `None` for any other value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ArrayLen(pub(crate) Option<usize>);

impl<'de> Deserialize<'de> for ArrayLen {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ArrayLen;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ArrayLen, A::Error> {
                let mut n = 0;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(ArrayLen(Some(n)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ArrayLen, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(ArrayLen(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<ArrayLen, E> {
                Ok(ArrayLen(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<ArrayLen, E> {
                Ok(ArrayLen(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<ArrayLen, E> {
                Ok(ArrayLen(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<ArrayLen, E> {
                Ok(ArrayLen(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<ArrayLen, E> {
                Ok(ArrayLen(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<ArrayLen, E> {
                Ok(ArrayLen(None))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// The human-readable message of a provider error value: the string itself, or its `message`
/// member, or else the raw JSON so that nothing is silently lost.
pub(crate) fn error_message(raw: &serde_json::value::RawValue) -> String {
    #[derive(serde::Deserialize)]
    struct WithMessage<'a> {
        #[serde(borrow, default)]
        message: Option<Scalar<'a>>,
    }
    if let Ok(CowStr(text)) = serde_json::from_str::<CowStr>(raw.get()) {
        return text.into_owned();
    }
    match serde_json::from_str::<WithMessage>(raw.get()) {
        Ok(WithMessage {
            message: Some(Scalar::Str(text)),
        }) => text.into_owned(),
        _ => raw.get().to_owned(),
    }
}
