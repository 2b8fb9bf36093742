//! Structs read from JSON objects only.
//!
//! serde's derived `Deserialize` also takes an array, field by field in declaration order:
//! `"policy": [10000, true, 20000]` would be a policy. [`ObjectOnly`] hands a struct's visitor
//! only to `deserialize_map`, so anything but an object is refused.

use serde::de::{Deserializer, Visitor};

/// A deserializer that reads every struct (and anything else asked of it) as a map.
pub(crate) struct ObjectOnly<D>(pub D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for ObjectOnly<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use crate::{JobRequest, Policy, S3Config};

    #[test]
    fn arrays_are_refused_objects_taken() {
        let e = serde_json::from_str::<Policy>("[10000, true, 20000]").unwrap_err();
        assert!(e.to_string().contains("expected a JSON object"), "{e}");
        let e = serde_json::from_str::<S3Config>(r#"["a", "b", "c", "d"]"#).unwrap_err();
        assert!(e.to_string().contains("expected a JSON object"), "{e}");
        let e = serde_json::from_str::<JobRequest>(r#"{"input": 1, "policy": [1]}"#).unwrap_err();
        assert!(e.to_string().contains("expected a JSON object"), "{e}");
        let p: Policy = serde_json::from_str(r#"{"ttl": 20000, "lowPriority": true}"#).unwrap();
        assert_eq!((p.ttl, p.low_priority), (Some(20000), Some(true)));
        let r: JobRequest = serde_json::from_str(r#"{"input": 1, "policy": null}"#).unwrap();
        assert_eq!(r.policy, None);
        // Both still serialize as before.
        assert_eq!(serde_json::to_string(&p).unwrap(), r#"{"lowPriority":true,"ttl":20000}"#);
    }
}
