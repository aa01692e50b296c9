//! The `filter` query parameter: the subset of HashiCorp's go-bexpr that people use, evaluated over the JSON an
//! endpoint answers (Consul evaluates bexpr over the same structs it encodes, so selectors are JSON field names).
//!
//! Supported: `<Selector> == <Value>`, `!=`, `<Value> in <Selector>`, `not in`, `<Selector> contains <Value>`,
//! `not contains`, `is empty`, `is not empty`, `and`, `or`, `not`, parentheses. Selectors are dotted field names
//! (`Service.Meta.version`, or `Service.Meta["version"]`); through a list (`Checks.Status`) a comparison holds when
//! it holds for any element. Values are `"double-quoted"`, `` `raw` `` or bare words. A selector that names no
//! field of the answer's element, `matches`/`not matches`, or a syntax error answer 400
//! `Failed to create boolean expression evaluator: …` — Consul's prefix [go-bexpr filter.go `CreateFilter`].

mod parse;

use parse::{Expr, Op};
use serde_json::Value;

/// A compiled filter.
pub struct Filter(Expr);

/// The 400 text for a filter the dev agent cannot evaluate.
fn err(msg: impl std::fmt::Display) -> String {
    format!("Failed to create boolean expression evaluator: {msg}")
}

impl Filter {
    /// Parse `expr` and check every selector against `template`, an element with every field the endpoint
    /// answers (maps as `{}`: any key is allowed below them; lists with one element).
    pub fn new(expr: &str, template: &Value) -> Result<Filter, String> {
        let e = parse::parse(expr).map_err(err)?;
        check_selectors(&e, template)?;
        Ok(Filter(e))
    }

    /// Whether `v` passes.
    pub fn matches(&self, v: &Value) -> bool {
        eval(&self.0, v)
    }
}

fn check_selectors(e: &Expr, template: &Value) -> Result<(), String> {
    match e {
        Expr::And(a, b) | Expr::Or(a, b) => {
            check_selectors(a, template)?;
            check_selectors(b, template)
        }
        Expr::Not(a) => check_selectors(a, template),
        Expr::Match { selector, .. } => {
            if selector_valid(template, selector) {
                Ok(())
            } else {
                Err(err(format!("Selector {:?} is not valid", selector.join("."))))
            }
        }
    }
}

/// Whether `path` names a field in `template`. Below an empty object (a map) any key is fine.
fn selector_valid(template: &Value, path: &[String]) -> bool {
    let Some((first, rest)) = path.split_first() else { return true };
    match template {
        Value::Object(m) if m.is_empty() => rest.is_empty(),
        Value::Object(m) => match get_field(m, first) {
            Some(v) => selector_valid(v, rest),
            None => false,
        },
        Value::Array(a) => a.first().map(|x| selector_valid(x, path)).unwrap_or(false),
        _ => false,
    }
}

fn get_field<'a>(m: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a Value> {
    m.get(key).or_else(|| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

/// Every value `path` reaches in `v`, flattening lists of objects on the way.
fn resolve<'a>(v: &'a Value, path: &[String], out: &mut Vec<&'a Value>) {
    let Some((first, rest)) = path.split_first() else {
        out.push(v);
        return;
    };
    match v {
        Value::Object(m) => {
            if let Some(x) = get_field(m, first) {
                resolve(x, rest, out);
            }
        }
        Value::Array(a) => {
            for x in a {
                if x.is_object() {
                    resolve(x, path, out);
                }
            }
        }
        _ => {}
    }
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

/// `value in container` for one resolved container: list element, substring, or map key.
fn contains(container: &Value, value: &str) -> bool {
    match container {
        Value::Array(a) => a.iter().any(|x| as_text(x).as_deref() == Some(value)),
        Value::String(s) => s.contains(value),
        Value::Object(m) => m.contains_key(value),
        _ => false,
    }
}

fn eval(e: &Expr, v: &Value) -> bool {
    match e {
        Expr::And(a, b) => eval(a, v) && eval(b, v),
        Expr::Or(a, b) => eval(a, v) || eval(b, v),
        Expr::Not(a) => !eval(a, v),
        Expr::Match { selector, op, value } => {
            let mut found = Vec::new();
            resolve(v, selector, &mut found);
            match op {
                Op::Equal => found.iter().any(|x| as_text(x).as_deref() == Some(value.as_str())),
                Op::NotEqual => !found.iter().any(|x| as_text(x).as_deref() == Some(value.as_str())),
                Op::In => found.iter().any(|x| contains(x, value)),
                Op::NotIn => !found.iter().any(|x| contains(x, value)),
                Op::IsEmpty => found.iter().all(|x| is_empty(x)),
                Op::IsNotEmpty => !found.iter().all(|x| is_empty(x)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry() -> Value {
        json!({"Service": {"Service": "web", "Tags": ["v1", "blue"], "Meta": {"version": "2"}, "Port": 8080},
               "Node": {"Node": "n1", "Meta": {}}, "Checks": [{"Status": "passing"}, {"Status": "critical"}]})
    }

    fn f(expr: &str) -> Result<bool, String> {
        let mut template = entry();
        template["Service"]["Meta"] = json!({});
        Filter::new(expr, &template).map(|f| f.matches(&entry()))
    }

    #[test]
    fn the_operators_people_use_evaluate_like_bexpr() {
        assert_eq!(f(r#"Service.Service == "web""#), Ok(true));
        assert_eq!(f("Service.Service != web"), Ok(false));
        assert_eq!(f(r#""blue" in Service.Tags"#), Ok(true));
        assert_eq!(f(r#""red" not in Service.Tags"#), Ok(true));
        assert_eq!(f("Service.Tags contains v1 and Service.Port == 8080"), Ok(true));
        assert_eq!(f(r#"Service.Meta.version == "2" or not Service.Service == web"#), Ok(true));
        assert_eq!(f(r#"Service.Meta["version"] == `2`"#), Ok(true));
        assert_eq!(f("Checks.Status == critical"), Ok(true));
        assert_eq!(f("not (Checks.Status == critical)"), Ok(false));
        assert_eq!(f("Service.Meta.missing is empty"), Ok(true));
        assert_eq!(f("Service.Tags is not empty"), Ok(true));
    }

    #[test]
    fn what_cannot_be_honoured_is_an_error_naming_it() {
        assert!(f("Service.Nope == x").unwrap_err().contains(r#"Selector "Service.Nope" is not valid"#));
        assert!(f("Service.Service matches w.*").unwrap_err().contains("matches"));
        assert!(f("Service.Service ==").unwrap_err().starts_with("Failed to create boolean expression evaluator: "));
        assert!(f("(Service.Service == web").is_err());
    }
}
