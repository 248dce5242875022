//! A small evaluator of CloudFormation templates as `serde_norway` reads them: paths of
//! mapping keys, short-form intrinsic functions, the intrinsics that depend on parameters only,
//! the stack's resources by type, and the pattern rules of IAM and CloudFront, for the tests
//! that hold `template.yaml` to what the code and AWS expect (tests/tests/template.rs).

use std::collections::BTreeMap;

use serde_norway::Value;

/// The stack's resources of `kind` (`AWS::Logs::LogGroup`), by logical id.
pub fn resources_of<'a>(t: &'a Value, kind: &str) -> Vec<(&'a str, &'a Value)> {
    at(t, "Resources")
        .as_mapping()
        .unwrap_or_else(|| panic!("no resources"))
        .iter()
        .filter(|(_, r)| text(at(r, "Type")) == kind)
        .map(|(name, r)| (text(name), r))
        .collect()
}

/// The value at a dotted path of mapping keys.
pub fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |v, key| {
        v.get(key)
            .unwrap_or_else(|| panic!("template.yaml: no {key} in {path}"))
    })
}

pub fn text(v: &Value) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("not a plain string: {v:?}"))
}

pub fn items(v: &Value) -> &[Value] {
    v.as_sequence()
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("not a list: {v:?}"))
}

pub fn texts(v: &Value) -> Vec<&str> {
    items(v).iter().map(text).collect()
}

/// The argument of a short-form intrinsic function (`!Ref X`, `!GetAtt X.Y`, `!Sub …`).
pub fn intrinsic<'a>(v: &'a Value, function: &str) -> Option<&'a Value> {
    match v {
        Value::Tagged(t) if t.tag == function => Some(&t.value),
        _ => None,
    }
}

pub fn is_intrinsic(v: &Value, function: &str, argument: &str) -> bool {
    intrinsic(v, function).and_then(Value::as_str) == Some(argument)
}

/// Evaluates the intrinsic functions that depend on parameters only (Ref of a parameter, Sub,
/// Join, Select, Split), as CloudFormation would with these parameter values.
pub fn evaluate(v: &Value, parameters: &BTreeMap<&str, &str>) -> Value {
    let string = |v: &Value| text(&evaluate(v, parameters)).to_owned();
    match v {
        Value::Sequence(list) => {
            Value::Sequence(list.iter().map(|i| evaluate(i, parameters)).collect())
        }
        Value::Tagged(t) => {
            let arguments = || items(&t.value);
            if t.tag == "Ref" {
                let name = text(&t.value);
                Value::String(
                    parameters
                        .get(name)
                        .unwrap_or_else(|| panic!("no value for {name}"))
                        .to_string(),
                )
            } else if t.tag == "Join" {
                let separator = text(&arguments()[0]);
                let parts = evaluate(&arguments()[1], parameters);
                Value::String(texts(&parts).join(separator))
            } else if t.tag == "Select" {
                let index = arguments()[0]
                    .as_u64()
                    .unwrap_or_else(|| panic!("Select index: {:?}", arguments()[0]));
                let list = evaluate(&arguments()[1], parameters);
                items(&list)[usize::try_from(index).unwrap_or(usize::MAX)].clone()
            } else if t.tag == "Split" {
                let separator = text(&arguments()[0]);
                let whole = string(&arguments()[1]);
                Value::Sequence(
                    whole
                        .split(separator)
                        .map(|s| Value::String(s.into()))
                        .collect(),
                )
            } else if t.tag == "Sub" {
                let (format, variables) = match &t.value {
                    Value::String(s) => (s.clone(), BTreeMap::new()),
                    _ => {
                        let variables = arguments()[1]
                            .as_mapping()
                            .map(|m| {
                                m.iter()
                                    .map(|(k, v)| (text(k).to_owned(), string(v)))
                                    .collect()
                            })
                            .unwrap_or_default();
                        (text(&arguments()[0]).to_owned(), variables)
                    }
                };
                let mut out = String::new();
                let mut rest = format.as_str();
                while let Some(start) = rest.find("${") {
                    out.push_str(&rest[..start]);
                    let end = rest[start..]
                        .find('}')
                        .unwrap_or_else(|| panic!("unclosed ${{ in {format}"));
                    let name = &rest[start + 2..start + end];
                    let value = variables
                        .get(name)
                        .cloned()
                        .or_else(|| parameters.get(name).map(|v| v.to_string()))
                        .unwrap_or_else(|| panic!("no value for ${{{name}}}"));
                    out.push_str(&value);
                    rest = &rest[start + end + 1..];
                }
                out.push_str(rest);
                Value::String(out)
            } else {
                panic!("cannot evaluate !{} here", t.tag)
            }
        }
        other => other.clone(),
    }
}

/// CloudFront path patterns: `*` matches any run of characters, `?` one, case-sensitive.
pub fn path_pattern_matches(pattern: &str, path: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some((b'*', rest)) => (0..=s.len()).any(|i| go(rest, &s[i..])),
            Some((b'?', rest)) => !s.is_empty() && go(rest, &s[1..]),
            Some((c, rest)) => s.first() == Some(c) && go(rest, &s[1..]),
        }
    }
    go(pattern.as_bytes(), path.as_bytes())
}

/// IAM's `StringLike`: `*` is any run of characters, `?` any one.
pub fn iam_like(pattern: &str, value: &str) -> bool {
    fn go(p: &[char], v: &[char]) -> bool {
        match p.split_first() {
            None => v.is_empty(),
            Some(('*', rest)) => (0..=v.len()).any(|i| go(rest, &v[i..])),
            Some(('?', rest)) => !v.is_empty() && go(rest, &v[1..]),
            Some((c, rest)) => v.first() == Some(c) && go(rest, &v[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let v: Vec<char> = value.chars().collect();
    go(&p, &v)
}
