//! The prepared `check` and `checkMany`: the queries frontends and services send most,
//! answered without async-graphql's executor once the executor has answered their text cleanly.
//!
//! A query text is prepared when it is nothing but one `check` (or one `checkMany`), with its
//! input in a variable: one query operation with one `CheckInput!` (`[CheckInput!]!`) variable
//! and no directives, fragments or default values, whose only root field is
//! `check(input: $var)` (`checkMany(inputs: $var)`), selecting only `allowed`, `revision` and
//! `__typename` (aliases allowed, each response key once). Its requests are read straight from
//! the JSON body, and only when the variables are exactly that one variable holding a plain
//! `CheckInput` (a JSON list of them, at most a batch: strings of the right field names, the
//! required ones present, nothing else): values the executor accepts as they are, and reads
//! the same.
//! The text itself must have passed the full validation with a clean run before
//! (`documents.rs`), so the limits and rules that depend on the text alone hold for it.
//!
//! A check about someone else (`principalId`: what a backend asks) is authorized here as the
//! executor authorizes it (`Checker::authorize_asking`, the same code). Anything else goes to
//! the executor, as does any request the prepared path cannot answer plainly: no signed-in
//! caller, and every error, which the executor then reports exactly as it always does.
//!
//! The answer is built as the executor builds it: the selected fields in the order the query
//! names them, under their response keys. A test sends each query twice and compares the two
//! answers byte for byte: the first from the executor, the second from here.

use std::borrow::Cow;
use std::collections::BTreeMap;

use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{
    BaseType, DocumentOperations, ExecutableDocument, OperationDefinition, OperationType, Selection,
};
use async_graphql::{ID, InputType, Name, OutputType, Value};
use async_graphql_value::Value as GqlValue;
use serde::Deserialize;

use crate::graphql::check::{CheckInput, Decision, own_check, own_checks, wire};
use crate::graphql::context::RequestCtx;
use crate::services::Services;

/// A field of `Decision` the prepared path writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Allowed,
    Revision,
    Typename,
}

/// The root field of a prepared text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Root {
    /// `check(input: $var)`, `$var: CheckInput!`.
    Check,
    /// `checkMany(inputs: $var)`, `$var: [CheckInput!]!`.
    CheckMany,
}

/// The inputs of one request of a prepared text.
pub enum Inputs {
    One(CheckInput),
    Many(Vec<CheckInput>),
}

/// What a query text that is one `check` (or `checkMany`) of the caller asks for.
#[derive(Debug, PartialEq, Eq)]
pub struct PreparedCheck {
    /// The operation's name when the text names it (a request may then name it too).
    operation: Option<Name>,
    /// The variable holding the input(s).
    variable: Name,
    root: Root,
    /// The response key of the root field.
    key: Name,
    /// The selected fields of the decision, by response key, in order.
    fields: Vec<(Name, Field)>,
}

impl PreparedCheck {
    /// The prepared form of `doc`, when it is one plain `check` of the caller.
    pub fn of(doc: &ExecutableDocument) -> Option<Self> {
        if !doc.fragments.is_empty() {
            return None;
        }
        let (operation, op) = match &doc.operations {
            DocumentOperations::Single(op) => (None, &op.node),
            DocumentOperations::Multiple(ops) if ops.len() == 1 => {
                let (name, op) = ops.iter().next()?;
                (Some(name.clone()), &op.node)
            }
            DocumentOperations::Multiple(_) => return None,
        };
        let (variable, root) = check_variable(op)?;
        let (field_name, argument_name) = match root {
            Root::Check => (wire::CHECK, wire::CHECK_INPUT_ARGUMENT),
            Root::CheckMany => (wire::CHECK_MANY, wire::CHECK_MANY_ARGUMENT),
        };
        let [only] = &op.selection_set.node.items[..] else {
            return None;
        };
        let Selection::Field(check) = &only.node else {
            return None;
        };
        let check = &check.node;
        let [(argument, value)] = &check.arguments[..] else {
            return None;
        };
        let takes_variable = matches!(&value.node, GqlValue::Variable(v) if *v == variable);
        if check.name.node.as_str() != field_name
            || !check.directives.is_empty()
            || argument.node.as_str() != argument_name
            || !takes_variable
        {
            return None;
        }
        let mut fields: Vec<(Name, Field)> = Vec::new();
        for item in &check.selection_set.node.items {
            let Selection::Field(f) = &item.node else {
                return None;
            };
            let f = &f.node;
            if !f.arguments.is_empty()
                || !f.directives.is_empty()
                || !f.selection_set.node.items.is_empty()
            {
                return None;
            }
            let field = match f.name.node.as_str() {
                name if name == wire::ALLOWED => Field::Allowed,
                name if name == wire::REVISION => Field::Revision,
                "__typename" => Field::Typename,
                _ => return None,
            };
            let key = f.response_key().node.clone();
            // The executor merges repeated keys; leave that to it.
            if fields.iter().any(|(k, _)| *k == key) {
                return None;
            }
            fields.push((key, field));
        }
        if fields.is_empty() {
            return None;
        }
        Some(Self {
            operation,
            variable,
            root,
            key: check.response_key().node.clone(),
            fields,
        })
    }

    /// The check input(s) of a request body of this text, read straight from the JSON: `None`
    /// unless the body names no operation or this one, and its variables are exactly this
    /// text's variable holding a plain `CheckInput` (each field a JSON string of the right name,
    /// the required ones present, nothing else), or for `checkMany` a JSON list of them. What
    /// this accepts, the executor accepts and reads the same; what it refuses goes to the
    /// executor.
    pub fn read(&self, body: &[u8], operation: Option<&str>) -> Option<Inputs> {
        let named = match (operation, &self.operation) {
            (None, _) => true,
            (Some(asked), Some(mine)) => asked == mine.as_str(),
            (Some(_), None) => false,
        };
        if !named {
            return None;
        }
        match self.root {
            Root::Check => {
                let input: PlainInput = self.variable_of(body)?;
                Some(Inputs::One(input.into()))
            }
            Root::CheckMany => {
                let inputs: Vec<PlainInput> = self.variable_of(body)?;
                Some(Inputs::Many(inputs.into_iter().map(Into::into).collect()))
            }
        }
    }

    /// The value of this text's variable in `body`, when it is the only one and reads as `T`.
    fn variable_of<'b, T: Deserialize<'b>>(&self, body: &'b [u8]) -> Option<T> {
        let body: Body<'_, T> = serde_json::from_slice(body).ok()?;
        let mut variables = body.variables?.into_iter();
        let (name, value) = variables.next()?;
        if variables.next().is_some() || name != self.variable.as_str() {
            return None;
        }
        Some(value)
    }

    /// The answer to a request of this text from the caller of `ctx` with `input`, or `None`
    /// when the executor must give it.
    pub async fn answer(
        &self,
        services: &Services,
        ctx: &RequestCtx,
        inputs: &Inputs,
    ) -> Option<async_graphql::Response> {
        let acting = crate::graphql::context::acting_of(&ctx.caller).ok()?;
        let value = match inputs {
            Inputs::One(input) => self.object(&own_check(services, &acting, input).await?),
            Inputs::Many(inputs) => Value::List(
                own_checks(services, &acting, inputs)
                    .await?
                    .iter()
                    .map(|d| self.object(d))
                    .collect(),
            ),
        };
        let mut data = IndexMap::with_capacity(1);
        data.insert(self.key.clone(), value);
        Some(async_graphql::Response::new(Value::Object(data)))
    }

    /// One decision with the selected fields, as the executor writes it.
    fn object(&self, decision: &Decision) -> Value {
        let mut out = IndexMap::with_capacity(self.fields.len());
        for (key, field) in &self.fields {
            let value = match field {
                Field::Allowed => Value::Boolean(decision.allowed),
                Field::Revision => Value::String(decision.revision_token()),
                Field::Typename => Value::String(Decision::type_name().into_owned()),
            };
            out.insert(key.clone(), value);
        }
        Value::Object(out)
    }
}

/// The variables of a request body (its other members are skipped).
#[derive(Deserialize)]
struct Body<'a, T> {
    #[serde(borrow)]
    variables: Option<BTreeMap<Cow<'a, str>, T>>,
}

/// A `CheckInput` as JSON, every field a string.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PlainInput {
    principal_id: Option<String>,
    action: String,
    resource_type: String,
    node_id: String,
    resource_id: Option<String>,
    at_least: Option<String>,
}

impl From<PlainInput> for CheckInput {
    fn from(input: PlainInput) -> Self {
        Self {
            principal_id: input.principal_id.map(ID),
            action: input.action,
            resource_type: input.resource_type,
            node_id: ID(input.node_id),
            resource_id: input.resource_id.map(ID),
            at_least: input.at_least,
        }
    }
}

/// The name of the operation's one variable and the root it feeds, when the operation is a
/// plain query whose one variable is a `CheckInput!` (or `[CheckInput!]!`) without a default.
fn check_variable(op: &OperationDefinition) -> Option<(Name, Root)> {
    if op.ty != OperationType::Query || !op.directives.is_empty() {
        return None;
    }
    let [var] = &op.variable_definitions[..] else {
        return None;
    };
    let var = &var.node;
    let ty = &var.var_type.node;
    let is_input = |base: &BaseType| matches!(base, BaseType::Named(name) if *name.as_str() == *CheckInput::type_name());
    let root = match &ty.base {
        base if is_input(base) => Root::Check,
        BaseType::List(item) if !item.nullable && is_input(&item.base) => Root::CheckMany,
        _ => return None,
    };
    (!ty.nullable && var.default_value.is_none() && var.directives.is_empty())
        .then(|| (var.name.node.clone(), root))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lines of the SDL block that opens with `head`.
    fn block(sdl: &str, head: &str) -> Vec<String> {
        let rest = sdl
            .split(head)
            .nth(1)
            .unwrap_or_else(|| panic!("no `{head}`"));
        let body = rest.split("\n}").next().unwrap_or_default();
        // Field lines, without descriptions (between lines of `"""`).
        let mut in_description = false;
        let mut lines = Vec::new();
        for line in body.lines().map(str::trim) {
            if line == "\"\"\"" {
                in_description = !in_description;
            } else if !in_description && !line.is_empty() && !line.starts_with('"') {
                lines.push(line.to_owned());
            }
        }
        lines
    }

    #[test]
    fn the_names_it_answers_are_the_schemas() {
        let sdl = crate::graphql::sdl();
        let (input, decision) = (CheckInput::type_name(), Decision::type_name());
        assert!(block(&sdl, "type Query {").contains(&format!(
            "{}({}: {input}!): {decision}!",
            wire::CHECK,
            wire::CHECK_INPUT_ARGUMENT
        )));
        assert!(block(&sdl, "type Query {").contains(&format!(
            "{}({}: [{input}!]!): [{decision}!]!",
            wire::CHECK_MANY,
            wire::CHECK_MANY_ARGUMENT
        )));
        let fields = block(&sdl, &format!("type {decision} {{"));
        assert!(
            fields.contains(&format!("{}: Boolean!", wire::ALLOWED)),
            "{fields:?}"
        );
        assert!(
            fields.contains(&format!("{}: String!", wire::REVISION)),
            "{fields:?}"
        );
        // The body reader takes exactly the input's fields: all of them, as strings.
        let mut plain = serde_json::Map::new();
        for line in block(&sdl, &format!("input {input} {{")) {
            let (name, ty) = line.split_once(": ").expect("a field");
            assert!(ty.starts_with("String") || ty.starts_with("ID"), "{line}");
            plain.insert(name.to_owned(), serde_json::json!("x"));
        }
        assert_eq!(plain.len(), 6);
        serde_json::from_value::<PlainInput>(serde_json::Value::Object(plain))
            .expect("PlainInput reads every CheckInput field");
    }

    fn prepared(text: &str) -> Option<PreparedCheck> {
        PreparedCheck::of(&async_graphql::parser::parse_query(text).ok()?)
    }

    #[test]
    fn only_a_plain_check_of_the_input_variable_is_prepared() {
        let plain = prepared("query($i: CheckInput!) { check(input: $i) { allowed } }");
        assert_eq!(
            plain,
            Some(PreparedCheck {
                operation: None,
                variable: Name::new("i"),
                root: Root::Check,
                key: Name::new("check"),
                fields: vec![(Name::new("allowed"), Field::Allowed)],
            })
        );
        let named = prepared(
            "query May($in: CheckInput!) { d: check(input: $in) { ok: allowed revision __typename } }",
        );
        assert_eq!(
            named,
            Some(PreparedCheck {
                operation: Some(Name::new("May")),
                variable: Name::new("in"),
                root: Root::Check,
                key: Name::new("d"),
                fields: vec![
                    (Name::new("ok"), Field::Allowed),
                    (Name::new("revision"), Field::Revision),
                    (Name::new("__typename"), Field::Typename),
                ],
            })
        );
        let many = prepared("query($is: [CheckInput!]!) { checkMany(inputs: $is) { allowed } }");
        assert_eq!(
            many,
            Some(PreparedCheck {
                operation: None,
                variable: Name::new("is"),
                root: Root::CheckMany,
                key: Name::new("checkMany"),
                fields: vec![(Name::new("allowed"), Field::Allowed)],
            })
        );
        for text in [
            // A list where one input goes, or one input where a list goes; nullable lists or
            // items; the other field's argument name.
            "query($i: [CheckInput!]!) { check(input: $i) { allowed } }",
            "query($i: CheckInput!) { checkMany(inputs: $i) { allowed } }",
            "query($is: [CheckInput!]) { checkMany(inputs: $is) { allowed } }",
            "query($is: [CheckInput]!) { checkMany(inputs: $is) { allowed } }",
            "query($is: [[CheckInput!]!]!) { checkMany(inputs: $is) { allowed } }",
            "query($is: [CheckInput!]!) { checkMany(input: $is) { allowed } }",
            "query($is: [CheckInput!]!) { checkMany(inputs: $is) { allowed reasons { kind } } }",
            // Reasons, another root field, a literal input, a nullable or defaulted variable.
            "query($i: CheckInput!) { check(input: $i) { allowed reasons { kind } } }",
            "query($i: CheckInput!) { check(input: $i) { allowed } __typename }",
            "{ check(input: {action: \"read\", resourceType: \"apps\", nodeId: \"x\"}) { allowed } }",
            "query($i: CheckInput) { check(input: $i) { allowed } }",
            "query($i: CheckInput! = {action: \"a\", resourceType: \"b\", nodeId: \"c\"}) { check(input: $i) { allowed } }",
            // Directives, fragments, repeated keys, another operation type or field.
            "query($i: CheckInput!) { check(input: $i) @skip(if: false) { allowed } }",
            "query($i: CheckInput!) { check(input: $i) { allowed @include(if: true) } }",
            "query($i: CheckInput!) { check(input: $i) { ...F } } fragment F on Decision { allowed }",
            "query($i: CheckInput!) { check(input: $i) { ... on Decision { allowed } } }",
            "query($i: CheckInput!) { check(input: $i) { allowed allowed } }",
            "query($i: CheckInput!) { check(input: $i) { a: allowed a: revision } }",
            "subscription($i: CheckInput!) { check(input: $i) { allowed } }",
            "query($i: CheckInput!) { explain(input: $i) { allowed } }",
            "query($i: CheckInput!, $j: CheckInput!) { check(input: $i) { allowed } }",
            "query A($i: CheckInput!) { check(input: $i) { allowed } } query B { __typename }",
            "query($i: CheckInput!) { check(input: $i) { } }",
        ] {
            assert_eq!(prepared(text), None, "{text}");
        }
    }
}
