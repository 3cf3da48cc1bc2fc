//! Serde and JSON Schema for decimals: money and quantities travel as decimal strings
//! (`"0.002"`) so no binary floating point ever touches them.

use rust_decimal::Decimal;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserializer, Serializer, de};
use std::borrow::Cow;
use std::fmt;

/// Writes a decimal in its shortest form (`"0.0020"` → `"0.002"`), so that two price
/// books meaning the same prices have the same canonical hash.
pub fn serialize<S: Serializer>(v: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&v.normalize())
}

/// Reads a decimal string or an integer. JSON numbers with a fraction are refused: by the
/// time they reach us they may already have been through binary floating point.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    d.deserialize_any(V)
}

/// `Option<Decimal>` with the same rules.
pub mod opt {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => super::serialize(v, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        d.deserialize_option(OptV)
    }

    struct OptV;

    impl<'de> de::Visitor<'de> for OptV {
        type Value = Option<Decimal>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a decimal written as a string, e.g. \"0.002\", or null")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            super::deserialize(d).map(Some)
        }
    }
}

/// Exact amounts on invoices: written with the scale they have (`"1.50"` in USD), so a
/// rounded amount shows its currency's minor units.
pub mod exact {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        super::deserialize(d)
    }
}

/// `BTreeMap<String, Decimal>` with decimal strings as values (`{"calls": "120000"}`).
pub mod map {
    use super::*;
    use serde::ser::SerializeMap;
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer>(
        v: &BTreeMap<String, Decimal>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(v.len()))?;
        for (k, d) in v {
            m.serialize_entry(k, &Ser(d))?;
        }
        m.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, Decimal>, D::Error> {
        let raw: BTreeMap<String, De> = serde::Deserialize::deserialize(d)?;
        Ok(raw.into_iter().map(|(k, v)| (k, v.0)).collect())
    }
}

/// `BTreeMap<String, Vec<Decimal>>` with decimal strings (`{"payments": ["12.50"]}`).
pub mod map_list {
    use super::*;
    use serde::ser::SerializeMap;
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer>(
        v: &BTreeMap<String, Vec<Decimal>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(v.len()))?;
        for (k, list) in v {
            let list: Vec<Ser<'_>> = list.iter().map(Ser).collect();
            m.serialize_entry(k, &list)?;
        }
        m.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, Vec<Decimal>>, D::Error> {
        let raw: BTreeMap<String, Vec<De>> = serde::Deserialize::deserialize(d)?;
        Ok(raw
            .into_iter()
            .map(|(k, v)| (k, v.into_iter().map(|x| x.0).collect()))
            .collect())
    }
}

/// A decimal written by [`serialize`], for collections of decimals.
struct Ser<'a>(&'a Decimal);

impl serde::Serialize for Ser<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize(self.0, s)
    }
}

/// A decimal read by [`deserialize`], for collections of decimals.
struct De(Decimal);

impl<'de> serde::Deserialize<'de> for De {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<De, D::Error> {
        deserialize(d).map(De)
    }
}

struct V;

impl de::Visitor<'_> for V {
    type Value = Decimal;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a decimal written as a string, e.g. \"0.002\"")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Decimal, E> {
        // `from_str_exact` refuses values it would have to round, so what is written is
        // what is charged.
        Decimal::from_str_exact(v).map_err(|_| E::custom(format!("{v:?} is not a decimal number")))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Decimal, E> {
        Ok(Decimal::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Decimal, E> {
        Ok(Decimal::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Decimal, E> {
        Err(E::custom(format!(
            "{v} is a number with a fraction: write it as a string (\"{v}\") so it stays exact"
        )))
    }
}

/// The JSON Schema of a decimal field (`#[schemars(with = "DecimalString")]`).
pub struct DecimalString;

impl JsonSchema for DecimalString {
    fn schema_name() -> Cow<'static, str> {
        "Decimal".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "An exact decimal number written as a string (`\"0.002\"`); integers may be written as JSON integers.",
            "type": ["string", "integer"],
            "pattern": r"^-?[0-9]+(\.[0-9]+)?$",
            "examples": ["0.002", "49.00"]
        })
    }
}
