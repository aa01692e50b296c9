//! Request bodies decoded the way Consul decodes them: Go's `encoding/json` into Consul's structs
//! [agent/http.go `decodeBody` → lib/json.go `DecodeJSON`].
//!
//! - Field names match exactly first, then case-insensitively (Go's rule), so `name`, `NAME` and `Name` are the
//!   same field; when two keys name one field, the later one in the document wins.
//! - Consul's snake_case aliases (`enable_tag_override`, `sidecar_service`, `service_id`, …) come from the
//!   `UnmarshalJSON` methods of its structs; the CamelCase field wins when both are set, except booleans, where an
//!   alias set to true wins (as the Go code does).
//! - Unknown fields are errors: Consul ≥ 1.7 calls `DisallowUnknownFields` (lib/json.go), answering
//!   `Request decode failed: json: unknown field "X"`.
//! - A wrong type answers Go's `json: cannot unmarshal string into Go struct field .Port of type int`. Consul's
//!   structs decode through an anonymous alias struct, hence the empty struct name before the dot.
//! - Durations (`Interval`, `TTL`, …) are Go duration strings or numbers of nanoseconds; a bad string answers
//!   `time: invalid duration "x"`; other JSON types are ignored, as Consul's `interface{}` switch does.
//!
//! The first error in document order is the one reported. Schemas live in schemas.rs.

mod json;
pub mod schemas;

pub use json::J;

use crate::util::parse_go_duration;
use std::collections::BTreeMap;
use std::time::Duration;

/// What a field holds, and how it is checked.
pub enum Kind {
    /// A string.
    Str,
    /// A boolean.
    Bool,
    /// A Go `int` (an integral JSON number).
    Int,
    /// `[]string`.
    StrList,
    /// `map[string]string`.
    StrMap,
    /// `map[string][]string` (HTTP check headers).
    Header,
    /// A Go duration: a string like `10s` or a number of nanoseconds.
    Duration,
    /// Anything (`interface{}` or a struct the dev agent keeps as JSON).
    Any,
    /// A nested struct.
    Obj(&'static Schema),
    /// A list of nested structs.
    ObjList(&'static Schema),
    /// A map of nested structs.
    ObjMap(&'static Schema),
}

/// One field of a Consul struct: its Go name (also the canonical JSON key), the aliases its `UnmarshalJSON`
/// accepts, its kind and the Go type named in errors.
pub struct Field {
    /// Go field name.
    pub name: &'static str,
    /// Extra JSON keys (exact, from the struct's `json:"..."` tags) that fill the same field.
    pub aliases: &'static [&'static str],
    /// How the value is checked.
    pub kind: Kind,
    /// The Go type in `cannot unmarshal` errors.
    pub go_type: &'static str,
}

/// A Consul struct.
pub struct Schema {
    /// The struct name Go prints before `.Field` in type errors (empty for Consul's alias structs).
    pub go_name: &'static str,
    /// Its fields.
    pub fields: &'static [Field],
}

/// A decoded value.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    /// A string.
    Str(String),
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A list of strings.
    List(Vec<String>),
    /// A string map.
    Map(BTreeMap<String, String>),
    /// Header map.
    Header(BTreeMap<String, Vec<String>>),
    /// A duration.
    Dur(Duration),
    /// Raw JSON.
    Any(serde_json::Value),
    /// A struct.
    Obj(Obj),
    /// A list of structs.
    ObjList(Vec<Obj>),
    /// A map of structs.
    ObjMap(BTreeMap<String, Obj>),
}

/// A decoded struct: values by field name, and alias values by alias.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Obj {
    main: BTreeMap<&'static str, Val>,
    /// (alias, field it fills, value).
    alias: Vec<(&'static str, &'static str, Val)>,
}

impl Obj {
    /// The field's value: the CamelCase key's, else an alias's (in the order the schema lists them).
    pub fn get(&self, field: &str) -> Option<&Val> {
        self.main.get(field).or_else(|| self.alias.iter().find(|(_, f, _)| *f == field).map(|(_, _, v)| v))
    }
    /// Whether the field was given (not null).
    pub fn has(&self, field: &str) -> bool {
        self.get(field).is_some()
    }
    /// A string field, empty when absent.
    pub fn str(&self, field: &str) -> String {
        match self.get(field) {
            Some(Val::Str(s)) => s.clone(),
            _ => String::new(),
        }
    }
    /// A boolean: true when the field or any alias is true.
    pub fn bool(&self, field: &str) -> bool {
        let t = |v: Option<&Val>| matches!(v, Some(Val::Bool(true)));
        t(self.main.get(field)) || self.alias.iter().any(|(_, f, v)| *f == field && t(Some(v)))
    }
    /// An integer, 0 when absent.
    pub fn int(&self, field: &str) -> i64 {
        match self.get(field) {
            Some(Val::Int(i)) => *i,
            _ => 0,
        }
    }
    /// A string list, empty when absent.
    pub fn list(&self, field: &str) -> Vec<String> {
        match self.get(field) {
            Some(Val::List(l)) => l.clone(),
            _ => Vec::new(),
        }
    }
    /// A string map, empty when absent.
    pub fn map(&self, field: &str) -> BTreeMap<String, String> {
        match self.get(field) {
            Some(Val::Map(m)) => m.clone(),
            _ => BTreeMap::new(),
        }
    }
    /// A duration, zero when absent.
    pub fn dur(&self, field: &str) -> Duration {
        match self.get(field) {
            Some(Val::Dur(d)) => *d,
            _ => Duration::ZERO,
        }
    }
    /// A nested struct.
    pub fn obj(&self, field: &str) -> Option<&Obj> {
        match self.get(field) {
            Some(Val::Obj(o)) => Some(o),
            _ => None,
        }
    }
    /// A list of nested structs, empty when absent.
    pub fn objs(&self, field: &str) -> Vec<Obj> {
        match self.get(field) {
            Some(Val::ObjList(l)) => l.clone(),
            _ => Vec::new(),
        }
    }
    /// A map of nested structs, empty when absent.
    pub fn obj_map(&self, field: &str) -> BTreeMap<String, Obj> {
        match self.get(field) {
            Some(Val::ObjMap(m)) => m.clone(),
            _ => BTreeMap::new(),
        }
    }
    /// Raw JSON of an `Any` field.
    pub fn any(&self, field: &str) -> Option<&serde_json::Value> {
        match self.get(field) {
            Some(Val::Any(v)) => Some(v),
            _ => None,
        }
    }
    /// Whether nothing at all was set (Consul's `CheckType.Empty()`).
    pub fn is_empty(&self) -> bool {
        self.main.is_empty() && self.alias.is_empty()
    }
}

/// Decode a request body into `schema`. `Err` is the text after `Request decode failed: `.
pub fn decode(body: &[u8], schema: &'static Schema) -> Result<Obj, String> {
    let value = json::parse(body)?;
    let mut ctx = Ctx { root: schema.go_name, path: Vec::new() };
    match &value {
        J::Obj(_) => ctx.object(&value, schema),
        J::Null => Ok(Obj::default()),
        other => Err(format!(
            "json: cannot unmarshal {} into Go value of type {}",
            other.kind(),
            if schema.go_name.is_empty() { "structs.ServiceDefinition" } else { schema.go_name }
        )),
    }
}

struct Ctx {
    root: &'static str,
    path: Vec<&'static str>,
}

impl Ctx {
    fn type_error(&self, got: &J, go_type: &str) -> String {
        let value = match got {
            J::Num(n) => format!("number {n}"),
            other => other.kind().to_string(),
        };
        let value = if matches!(got, J::Num(_)) && !go_type.contains("int") { "number".to_string() } else { value };
        format!(
            "json: cannot unmarshal {value} into Go struct field {}.{} of type {go_type}",
            self.root,
            self.path.join(".")
        )
    }

    fn object(&mut self, v: &J, schema: &'static Schema) -> Result<Obj, String> {
        let J::Obj(entries) = v else { return Ok(Obj::default()) };
        let mut out = Obj::default();
        for (key, value) in entries {
            let (field, alias) = find_field(schema, key).ok_or_else(|| format!("json: unknown field {key:?}"))?;
            self.path.push(field.name);
            let decoded = self.value(value, field)?;
            self.path.pop();
            let Some(decoded) = decoded else { continue };
            match alias {
                None => {
                    out.main.insert(field.name, decoded);
                }
                Some(a) => {
                    out.alias.retain(|(x, _, _)| *x != a);
                    out.alias.push((a, field.name, decoded));
                }
            }
        }
        Ok(out)
    }

    /// `None` for JSON null (Go leaves the field as it was).
    fn value(&mut self, v: &J, field: &Field) -> Result<Option<Val>, String> {
        if matches!(v, J::Null) {
            return Ok(None);
        }
        let wrong = |ctx: &Ctx| Err(ctx.type_error(v, field.go_type));
        let val = match (&field.kind, v) {
            (Kind::Str, J::Str(s)) => Val::Str(s.clone()),
            (Kind::Bool, J::Bool(b)) => Val::Bool(*b),
            (Kind::Int, J::Num(n)) => match n.as_i64() {
                Some(i) => Val::Int(i),
                None => return wrong(self),
            },
            (Kind::StrList, J::Arr(items)) => {
                let mut out = Vec::new();
                for item in items {
                    match item {
                        J::Str(s) => out.push(s.clone()),
                        J::Null => out.push(String::new()),
                        other => return Err(self.type_error(other, "string")),
                    }
                }
                Val::List(out)
            }
            (Kind::StrMap, J::Obj(entries)) => {
                let mut out = BTreeMap::new();
                for (k, item) in entries {
                    match item {
                        J::Str(s) => {
                            out.insert(k.clone(), s.clone());
                        }
                        J::Null => {
                            out.insert(k.clone(), String::new());
                        }
                        other => return Err(self.type_error(other, "string")),
                    }
                }
                Val::Map(out)
            }
            (Kind::Header, J::Obj(entries)) => {
                let mut out = BTreeMap::new();
                for (k, item) in entries {
                    let J::Arr(values) = item else { return Err(self.type_error(item, "[]string")) };
                    let mut list = Vec::new();
                    for x in values {
                        match x {
                            J::Str(s) => list.push(s.clone()),
                            other => return Err(self.type_error(other, "string")),
                        }
                    }
                    out.insert(k.clone(), list);
                }
                Val::Header(out)
            }
            (Kind::Duration, J::Str(s)) => match parse_go_duration(s) {
                Some(d) => Val::Dur(d),
                None => return Err(format!("time: invalid duration {s:?}")),
            },
            (Kind::Duration, J::Num(n)) => Val::Dur(Duration::from_nanos(n.as_f64().unwrap_or(0.0).max(0.0) as u64)),
            (Kind::Duration, _) => return Ok(None),
            (Kind::Any, other) => Val::Any(other.to_value()),
            (Kind::Obj(schema), J::Obj(_)) => Val::Obj(self.object(v, schema)?),
            (Kind::ObjList(schema), J::Arr(items)) => {
                let mut out = Vec::new();
                for item in items {
                    match item {
                        J::Obj(_) => out.push(self.object(item, schema)?),
                        J::Null => out.push(Obj::default()),
                        other => return Err(self.type_error(other, &format!("structs.{}", schema_type(schema)))),
                    }
                }
                Val::ObjList(out)
            }
            (Kind::ObjMap(schema), J::Obj(entries)) => {
                let mut out = BTreeMap::new();
                for (k, item) in entries {
                    match item {
                        J::Obj(_) => {
                            out.insert(k.clone(), self.object(item, schema)?);
                        }
                        J::Null => {
                            out.insert(k.clone(), Obj::default());
                        }
                        other => return Err(self.type_error(other, &format!("structs.{}", schema_type(schema)))),
                    }
                }
                Val::ObjMap(out)
            }
            _ => return wrong(self),
        };
        Ok(Some(val))
    }
}

fn schema_type(schema: &Schema) -> &'static str {
    schema.fields.first().map(|_| schema.go_name).filter(|n| !n.is_empty()).unwrap_or("CheckType")
}

/// The field `key` names: an exact match on a name or alias first, then a case-insensitive one (Go's rule).
/// Returns the field and, when matched through an alias, the alias.
fn find_field(schema: &'static Schema, key: &str) -> Option<(&'static Field, Option<&'static str>)> {
    let exact = schema.fields.iter().find_map(|f| {
        if f.name == key {
            Some((f, None))
        } else {
            f.aliases.iter().find(|a| **a == key).map(|a| (f, Some(*a)))
        }
    });
    exact.or_else(|| {
        schema.fields.iter().find_map(|f| {
            if f.name.eq_ignore_ascii_case(key) {
                Some((f, None))
            } else {
                f.aliases.iter().find(|a| a.eq_ignore_ascii_case(key)).map(|a| (f, Some(*a)))
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::schemas::SERVICE_DEFINITION;
    use super::*;

    #[test]
    fn field_names_match_case_insensitively_and_the_later_key_wins() {
        let o = decode(
            br#"{"name":"web","PORT":80,"connect":{"native":true},"Connect":{"Native":false}}"#,
            &SERVICE_DEFINITION,
        )
        .unwrap();
        assert_eq!(o.str("Name"), "web");
        assert_eq!(o.int("Port"), 80);
        assert!(!o.obj("Connect").unwrap().bool("Native"), "the later Connect replaces the earlier");
    }

    #[test]
    fn snake_case_aliases_fill_their_field() {
        let o = decode(
            br#"{"Name":"w","enable_tag_override":true,"tagged_addresses":{"lan":{"address":"1.2.3.4","port":1}}}"#,
            &SERVICE_DEFINITION,
        )
        .unwrap();
        assert!(o.bool("EnableTagOverride"));
        assert_eq!(o.obj_map("TaggedAddresses")["lan"].str("Address"), "1.2.3.4");
    }

    #[test]
    fn unknown_fields_and_wrong_types_get_gos_texts() {
        assert_eq!(
            decode(br#"{"Name":"w","Bogus":1}"#, &SERVICE_DEFINITION).unwrap_err(),
            r#"json: unknown field "Bogus""#
        );
        assert_eq!(
            decode(br#"{"Name":"w","Port":"80"}"#, &SERVICE_DEFINITION).unwrap_err(),
            "json: cannot unmarshal string into Go struct field .Port of type int"
        );
        assert_eq!(
            decode(br#"{"Name":"w","Port":1.5}"#, &SERVICE_DEFINITION).unwrap_err(),
            "json: cannot unmarshal number 1.5 into Go struct field .Port of type int"
        );
        assert_eq!(
            decode(br#"{"Name":"w","Check":{"TTL":"ten"}}"#, &SERVICE_DEFINITION).unwrap_err(),
            r#"time: invalid duration "ten""#
        );
    }
}
