//! Constrained output: the GBNF grammar (llama.cpp's grammar format) of any JSON object, or of
//! the values a JSON Schema allows, for `response_format` on the OpenAI route.
//!
//! The schema's structure becomes the grammar: types, `properties` (every property written, in
//! the schema's order, so the output has each `required` one), `items` with `minItems` and
//! `maxItems`, `enum`, `const`, `anyOf`/`oneOf`, type lists, string lengths, `minimum: 0` on
//! numbers, `$ref` into `$defs`/`definitions`. A keyword whose check a grammar cannot make
//! (`pattern`, `format`, other bounds, ...) is refused with its name: [`GrammarError`].
//!
//! ```
//! use text_generation::json_grammar::{json_object_grammar, schema_grammar};
//! let schema = serde_json::json!({"type": "object", "properties": {"city": {"type": "string"}}});
//! assert!(schema_grammar(&schema).unwrap().contains(r#""\"city\"""#));
//! assert!(json_object_grammar().starts_with("root ::= object"));
//! let err = schema_grammar(&serde_json::json!({"type": "string", "pattern": "^a"})).unwrap_err();
//! assert!(err.to_string().contains("pattern"));
//! ```

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// A schema the grammar cannot honour, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct GrammarError(String);

/// The rules every grammar shares: any JSON value, bounded whitespace.
const BASE: &str = r#"value ::= object | array | string | number | "true" ws | "false" ws | "null" ws
object ::= "{" ws ( string ":" ws value ( "," ws string ":" ws value )* )? "}" ws
array ::= "[" ws ( value ( "," ws value )* )? "]" ws
string ::= "\"" char* "\"" ws
char ::= [^"\\\x7F\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} )
integer ::= "-"? natural ws
natural ::= "0" | [1-9] [0-9]{0,15}
number ::= "-"? natural ( "." [0-9]+ )? ( [eE] [-+]? [0-9]+ )? ws
unsigned-integer ::= natural ws
unsigned-number ::= natural ( "." [0-9]+ )? ( [eE] [-+]? [0-9]+ )? ws
ws ::= [ \t\n]{0,16}
"#;

/// The grammar of any JSON object (`{"type": "json_object"}`).
pub fn json_object_grammar() -> String {
    format!("root ::= object\n{BASE}")
}

/// The grammar of the values `schema` allows (`{"type": "json_schema", ...}`).
pub fn schema_grammar(schema: &Value) -> Result<String, GrammarError> {
    let mut g = Builder { root: schema, rules: BTreeMap::new(), refs: BTreeMap::new(), depth: 0 };
    let root = g.expr(schema, "root")?;
    let mut out = format!("root ::= {root}\n");
    for (name, body) in &g.rules {
        out.push_str(&format!("{name} ::= {body}\n"));
    }
    out.push_str(BASE);
    Ok(out)
}

/// Annotation keywords: they say nothing about which values are valid.
const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "default",
    "examples",
    "$schema",
    "$id",
    "$comment",
    "$defs",
    "definitions",
    "deprecated",
    "readOnly",
    "writeOnly",
    "strict",
    "additionalProperties",
    "required",
    "nullable",
];

/// Most nested schemas (a deeper one is refused rather than recursed into).
const MAX_DEPTH: usize = 64;

struct Builder<'a> {
    root: &'a Value,
    /// Named rules: `$ref` targets and object/array helpers.
    rules: BTreeMap<String, String>,
    /// `$ref` string to its rule name (set before the target is built, so recursion works).
    refs: BTreeMap<String, String>,
    depth: usize,
}

fn err(m: impl Into<String>) -> GrammarError {
    GrammarError(m.into())
}

/// A GBNF literal matching exactly the JSON text of `v`.
fn literal(v: &Value) -> String {
    let json = v.to_string();
    let mut out = String::from("\"");
    for c in json.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn count(schema: &Map<String, Value>, key: &str) -> Result<Option<u64>, GrammarError> {
    match schema.get(key) {
        None => Ok(None),
        Some(v) => {
            v.as_u64().map(Some).ok_or_else(|| err(format!("`{key}` must be a whole number, got {v}")))
        }
    }
}

/// `item` repeated from `min` to `max` times (unbounded when `max` is `None`), separated by
/// `sep`.
fn repeat(item: &str, sep: &str, min: u64, max: Option<u64>) -> Result<String, GrammarError> {
    if max.is_some_and(|m| m < min) {
        return Err(err(format!("maxItems {} is below minItems {min}", max.unwrap_or(0))));
    }
    if max.is_some_and(|m| m > 1000) || min > 1000 {
        return Err(err("minItems and maxItems above 1000 are not supported"));
    }
    let rest = |n: u64| match max {
        Some(m) => format!("{{{},{}}}", n, m - 1),
        None => format!("{{{n},}}"),
    };
    Ok(match (min, max) {
        (_, Some(0)) => String::new(),
        (0, _) => format!("( {item} ( {sep} {item} ){} )?", rest(0)),
        (n, _) => format!("{item} ( {sep} {item} ){}", rest(n - 1)),
    })
}

impl Builder<'_> {
    /// The expression matching what `schema` allows; `hint` names any rule it adds.
    fn expr(&mut self, schema: &Value, hint: &str) -> Result<String, GrammarError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(err(format!("the schema nests deeper than {MAX_DEPTH} levels")));
        }
        let out = self.expr_inner(schema, hint);
        self.depth -= 1;
        out
    }

    fn expr_inner(&mut self, schema: &Value, hint: &str) -> Result<String, GrammarError> {
        let s = match schema {
            Value::Bool(true) => return Ok("value".into()),
            Value::Bool(false) => return Err(err("a `false` schema allows no value")),
            Value::Object(s) => s,
            other => return Err(err(format!("a schema must be an object or a boolean, got {other}"))),
        };
        if let Some(r) = s.get("$ref") {
            return self.reference(r);
        }
        if let Some(v) = s.get("const") {
            return Ok(format!("{} ws", literal(v)));
        }
        if let Some(e) = s.get("enum") {
            let list = e
                .as_array()
                .filter(|l| !l.is_empty())
                .ok_or_else(|| err("`enum` must be a non-empty list"))?;
            let alts: Vec<String> = list.iter().map(literal).collect();
            return Ok(format!("( {} ) ws", alts.join(" | ")));
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(list) = s.get(key) {
                let list = list
                    .as_array()
                    .filter(|l| !l.is_empty())
                    .ok_or_else(|| err(format!("`{key}` must be a non-empty list")))?;
                let alts = list
                    .iter()
                    .enumerate()
                    .map(|(i, sub)| self.expr(sub, &format!("{hint}-{i}")))
                    .collect::<Result<Vec<_>, _>>()?;
                return Ok(format!("( {} )", alts.join(" | ")));
            }
        }
        let types: Vec<&str> = match s.get("type") {
            None => {
                if s.contains_key("properties") {
                    vec!["object"]
                } else if s.contains_key("items") {
                    vec!["array"]
                } else {
                    self.refuse_unknown(s, &[])?;
                    return Ok("value".into());
                }
            }
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(list)) => list
                .iter()
                .map(|t| t.as_str().ok_or_else(|| err(format!("`type` must name types, got {t}"))))
                .collect::<Result<_, _>>()?,
            Some(other) => return Err(err(format!("`type` must name types, got {other}"))),
        };
        let mut alts = Vec::new();
        for t in &types {
            alts.push(match *t {
                "object" => self.object(s, hint)?,
                "array" => self.array(s, hint)?,
                "string" => self.string(s)?,
                "integer" | "number" => self.number(s, t)?,
                "boolean" => "( \"true\" | \"false\" ) ws".into(),
                "null" => "\"null\" ws".into(),
                other => return Err(err(format!("unknown type `{other}`"))),
            });
        }
        Ok(if alts.len() == 1 { alts.remove(0) } else { format!("( {} )", alts.join(" | ")) })
    }

    /// Refuses the keywords of `s` that are neither annotations nor in `known`.
    fn refuse_unknown(&self, s: &Map<String, Value>, known: &[&str]) -> Result<(), GrammarError> {
        let always =
            ["type", "properties", "items", "minItems", "maxItems", "minLength", "maxLength", "minimum"];
        for key in s.keys() {
            let k = key.as_str();
            if ANNOTATIONS.contains(&k) || known.contains(&k) || always.contains(&k) {
                continue;
            }
            return Err(err(format!("the schema keyword `{k}` is not supported in response_format (the output could not be held to it)")));
        }
        Ok(())
    }

    fn reference(&mut self, r: &Value) -> Result<String, GrammarError> {
        let r = r.as_str().ok_or_else(|| err("`$ref` must be a string"))?;
        if let Some(name) = self.refs.get(r) {
            return Ok(name.clone());
        }
        let path = r
            .strip_prefix("#/$defs/")
            .map(|n| ("$defs", n))
            .or_else(|| r.strip_prefix("#/definitions/").map(|n| ("definitions", n)))
            .ok_or_else(|| {
                err(format!(
                    "`$ref` {r:?}: only references into `#/$defs/` or `#/definitions/` are supported"
                ))
            })?;
        let target = self
            .root
            .get(path.0)
            .and_then(|d| d.get(path.1))
            .ok_or_else(|| err(format!("`$ref` {r:?} names no definition")))?;
        let clean: String = path
            .1
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
            .collect();
        let name = format!("def-{}-{clean}", self.refs.len());
        self.refs.insert(r.to_owned(), name.clone());
        let body = self.expr(target, &name)?;
        self.rules.insert(name.clone(), body);
        Ok(name)
    }

    fn object(&mut self, s: &Map<String, Value>, hint: &str) -> Result<String, GrammarError> {
        self.refuse_unknown(s, &[])?;
        let Some(props) = s.get("properties") else {
            return Ok(match s.get("additionalProperties") {
                Some(extra @ Value::Object(_)) => {
                    let v = self.expr(extra, &format!("{hint}-value"))?;
                    format!("\"{{\" ws ( string \":\" ws {v} ( \",\" ws string \":\" ws {v} )* )? \"}}\" ws")
                }
                _ => "object".into(),
            });
        };
        let props = props.as_object().ok_or_else(|| err("`properties` must be an object"))?;
        if let Some(req) = s.get("required").and_then(Value::as_array) {
            for name in req {
                let name = name.as_str().unwrap_or_default();
                if !props.contains_key(name) {
                    return Err(err(format!("required property `{name}` has no schema in `properties`")));
                }
            }
        }
        if props.is_empty() {
            return Ok("\"{\" ws \"}\" ws".into());
        }
        let mut parts = Vec::new();
        for (i, (name, sub)) in props.iter().enumerate() {
            let key = literal(&Value::String(name.clone()));
            let value = self.expr(sub, &format!("{hint}-{i}"))?;
            parts.push(format!("{key} ws \":\" ws {value}"));
        }
        let rule = format!("{hint}-object");
        self.rules.insert(rule.clone(), format!("\"{{\" ws {} \"}}\" ws", parts.join(" \",\" ws ")));
        Ok(rule)
    }

    fn array(&mut self, s: &Map<String, Value>, hint: &str) -> Result<String, GrammarError> {
        self.refuse_unknown(s, &[])?;
        let item = match s.get("items") {
            Some(items) => self.expr(items, &format!("{hint}-item"))?,
            None => "value".into(),
        };
        let body = repeat(&item, "\",\" ws", count(s, "minItems")?.unwrap_or(0), count(s, "maxItems")?)?;
        let rule = format!("{hint}-array");
        self.rules.insert(rule.clone(), format!("\"[\" ws {body} \"]\" ws"));
        Ok(rule)
    }

    fn string(&mut self, s: &Map<String, Value>) -> Result<String, GrammarError> {
        self.refuse_unknown(s, &[])?;
        let (min, max) = (count(s, "minLength")?, count(s, "maxLength")?);
        if min.is_none() && max.is_none() {
            return Ok("string".into());
        }
        let min = min.unwrap_or(0);
        if max.is_some_and(|m| m < min) || min > 10_000 || max.is_some_and(|m| m > 10_000) {
            return Err(err("minLength/maxLength out of range (at most 10000, and min <= max)"));
        }
        let reps = match max {
            Some(m) => format!("{{{min},{m}}}"),
            None => format!("{{{min},}}"),
        };
        Ok(format!("\"\\\"\" char{reps} \"\\\"\" ws"))
    }

    fn number(&mut self, s: &Map<String, Value>, t: &str) -> Result<String, GrammarError> {
        self.refuse_unknown(s, &[])?;
        let unsigned = match s.get("minimum") {
            None => false,
            Some(m) if m.as_f64() == Some(0.0) => true,
            Some(m) => {
                return Err(err(format!(
                    "`minimum` {m} is not supported in response_format (only 0: no negative numbers)"
                )))
            }
        };
        Ok(match (t, unsigned) {
            ("integer", false) => "integer",
            ("integer", true) => "unsigned-integer",
            (_, false) => "number",
            (_, true) => "unsigned-number",
        }
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refuses_what_a_grammar_cannot_check() {
        for (schema, word) in [
            (json!({"type": "string", "format": "email"}), "format"),
            (json!({"type": "integer", "maximum": 5}), "maximum"),
            (json!({"type": "integer", "minimum": 3}), "minimum"),
            (json!({"$ref": "http://x/y"}), "$ref"),
            (json!({"type": "array", "minItems": 3, "maxItems": 2}), "maxItems"),
            (json!({"type": "object", "properties": {}, "required": ["a"]}), "required"),
            (json!({"type": "thing"}), "thing"),
            (json!(false), "false"),
        ] {
            let e = schema_grammar(&schema).unwrap_err().to_string();
            assert!(e.contains(word), "{schema}: {e}");
        }
    }

    #[test]
    fn recursive_definitions_become_recursive_rules() {
        let schema = json!({"$ref": "#/$defs/node", "$defs": {"node": {"type": "object", "properties": {
            "name": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}}});
        let g = schema_grammar(&schema).unwrap();
        assert!(g.starts_with("root ::= def-0-node\n"), "{g}");
        assert!(g.contains("def-0-node ::= def-0-node-object"), "{g}");
    }
}
