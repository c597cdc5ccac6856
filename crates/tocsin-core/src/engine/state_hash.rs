//! The hash of what a value would serialize to, computed without serializing it.
//!
//! Owns one thing: telling whether an instance's persisted form changed since it was last
//! handed out ([`super::Engine::take_changes`] asks this of every instance not at rest,
//! every evaluation). Writing JSON and hashing it cost a string, a float formatting per
//! number and an allocation per instance per evaluation; this walks the same `Serialize`
//! output and feeds it to a hasher. It must stay a pure function of the serialized form:
//! two values that serialize alike hash alike, and it never decides what is persisted.
//!
//! Every value is prefixed with a tag of its kind, and sequences and maps with their end,
//! so that forms which differ only in nesting (`[[1], 2]` and `[[1, 2]]`, `None` and
//! `Some(())`) hash apart.
//!
//! The hash folds one 64-bit word at a time, multiply-rotate (as rustc's `FxHasher`), not
//! SipHash: SipHash's cost per small write was most of the time, and nothing adversarial
//! chooses these states. Each step is a bijection of the running hash for a fixed word, and
//! of the word for a fixed hash, so two forms of the same shape that differ in one word
//! always hash apart, which is the common change (a timestamp, a count, a tier).

use serde::ser::{self, Serialize};

/// The hash of `value`'s serialized form; `None` when its `Serialize` reports an error (the
/// caller then treats it as changed).
pub(crate) fn of<T: Serialize + ?Sized>(value: &T) -> Option<u64> {
    let mut s = StateHasher(0);
    value.serialize(&mut s).ok()?;
    Some(s.0)
}

/// The kinds a value is tagged with.
#[repr(u8)]
enum Tag {
    Bool = 1,
    Int,
    Uint,
    Float,
    Char,
    Str,
    Bytes,
    None,
    Some,
    Unit,
    Variant,
    Newtype,
    Seq,
    Map,
    Struct,
    Field,
    End,
}

/// The running hash.
struct StateHasher(u64);

impl StateHasher {
    fn word(&mut self, w: u64) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
    }

    fn tag(&mut self, t: Tag) {
        self.word(t as u64);
    }

    fn bytes(&mut self, b: &[u8]) {
        self.word(b.len() as u64);
        let mut chunks = b.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes(c.try_into().unwrap_or_default()));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.word(u64::from_le_bytes(last));
        }
    }

    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
}

/// A `Serialize` implementation's own error; the hashing never fails by itself.
#[derive(Debug)]
pub(crate) struct Error(String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: std::fmt::Display>(msg: T) -> Error {
        Error(msg.to_string())
    }
}

type Done = Result<(), Error>;

impl ser::Serializer for &mut StateHasher {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    fn serialize_bool(self, v: bool) -> Done {
        self.tag(Tag::Bool);
        self.word(u64::from(v));
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Done {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i16(self, v: i16) -> Done {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i32(self, v: i32) -> Done {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i64(self, v: i64) -> Done {
        self.tag(Tag::Int);
        self.word(v as u64);
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Done {
        self.tag(Tag::Int);
        self.word(v as u64);
        self.word((v >> 64) as u64);
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Done {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u16(self, v: u16) -> Done {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u32(self, v: u32) -> Done {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u64(self, v: u64) -> Done {
        self.tag(Tag::Uint);
        self.word(v);
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Done {
        self.tag(Tag::Uint);
        self.word(v as u64);
        self.word((v >> 64) as u64);
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Done {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Done {
        self.tag(Tag::Float);
        self.word(v.to_bits());
        Ok(())
    }
    fn serialize_char(self, v: char) -> Done {
        self.tag(Tag::Char);
        self.word(u64::from(u32::from(v)));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Done {
        self.tag(Tag::Str);
        self.str(v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Done {
        self.tag(Tag::Bytes);
        self.bytes(v);
        Ok(())
    }
    fn serialize_none(self) -> Done {
        self.tag(Tag::None);
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Done {
        self.tag(Tag::Some);
        value.serialize(self)
    }
    fn serialize_unit(self) -> Done {
        self.tag(Tag::Unit);
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Done {
        self.serialize_unit()
    }
    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Done {
        self.tag(Tag::Variant);
        self.str(variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _name: &'static str, value: &T) -> Done {
        self.tag(Tag::Newtype);
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Done {
        self.tag(Tag::Variant);
        self.str(variant);
        value.serialize(self)
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self, Error> {
        self.tag(Tag::Seq);
        Ok(self)
    }
    fn serialize_tuple(self, len: usize) -> Result<Self, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Self, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self, Error> {
        self.tag(Tag::Variant);
        self.str(variant);
        self.serialize_seq(Some(len))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self, Error> {
        self.tag(Tag::Map);
        Ok(self)
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self, Error> {
        self.tag(Tag::Struct);
        Ok(self)
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self, Error> {
        self.tag(Tag::Variant);
        self.str(variant);
        self.tag(Tag::Struct);
        Ok(self)
    }
}

/// The sequence-like forms: each element hashed in turn, then their end.
macro_rules! elements {
    ($($form:ident::$element:ident),*) => {$(
        impl ser::$form for &mut StateHasher {
            type Ok = ();
            type Error = Error;
            fn $element<T: Serialize + ?Sized>(&mut self, value: &T) -> Done {
                value.serialize(&mut **self)
            }
            fn end(self) -> Done {
                self.tag(Tag::End);
                Ok(())
            }
        }
    )*};
}

elements!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

/// The struct-like forms: each field hashed with its name, so that a field skipped when
/// empty does not shift the others onto it, then their end.
macro_rules! fields {
    ($($form:ident),*) => {$(
        impl ser::$form for &mut StateHasher {
            type Ok = ();
            type Error = Error;
            fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Done {
                self.tag(Tag::Field);
                self.str(key);
                value.serialize(&mut **self)
            }
            fn end(self) -> Done {
                self.tag(Tag::End);
                Ok(())
            }
        }
    )*};
}

fields!(SerializeStruct, SerializeStructVariant);

impl ser::SerializeMap for &mut StateHasher {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Done {
        key.serialize(&mut **self)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Done {
        value.serialize(&mut **self)
    }
    fn end(self) -> Done {
        self.tag(Tag::End);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::of;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    #[test]
    fn forms_that_differ_only_in_nesting_or_presence_hash_apart() {
        let pairs = [
            (json!([[1], 2]), json!([[1, 2]])),
            (json!([]), json!([[]])),
            (json!({"a": 1, "b": 2}), json!({"a": 1})),
            (json!({"a": "b"}), json!({"ab": ""})),
            (json!(1), json!(1.0)),
            (json!(null), json!([])),
        ];
        for (a, b) in pairs {
            assert_ne!(of(&a), of(&b), "{a} and {b}");
        }
        assert_ne!(of(&None::<()>), of(&Some(())));
        assert_ne!(of(&Some(0u8)), of(&0u8));
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "[a-c]{0,3}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-c]{0,2}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// The hash is a function of the serialized form: equal JSON, equal hash; and in
        /// these small trees, different JSON never collided.
        #[test]
        fn hashes_agree_exactly_when_the_json_does(a in value(), b in value()) {
            let same = serde_json::to_string(&a).unwrap() == serde_json::to_string(&b).unwrap();
            prop_assert_eq!(of(&a) == of(&b), same);
        }
    }
}
