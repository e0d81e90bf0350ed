//! The prepared `check`: the one query frontends and services send most, answered without
//! async-graphql's executor once the executor has answered its text and variables' shape
//! cleanly.
//!
//! A query text is prepared when it is nothing but one `check` of the caller, with its input in
//! a variable: one query operation with one `CheckInput!` variable and no directives,
//! fragments or default values, whose only root field is `check(input: $var)`, selecting only
//! `allowed`, `revision` and `__typename` (aliases allowed, each response key once). Anything
//! else goes to the executor, as does any request the prepared path cannot answer plainly: a
//! check about someone else (it needs an authorization the executor's context carries), and
//! every error, which the executor then reports exactly as it always does. The prepared path
//! answers only texts whose variables' shape passed the full validation with a clean run
//! (`documents.rs`), so the limits and rules the executor applies held for it already; and
//! the input is read by the same `InputType::parse` the executor uses.
//!
//! The answer is built as the executor builds it: the selected fields in the order the query
//! names them, under their response keys. A test sends each query twice and compares the two
//! answers byte for byte: the first from the executor, the second from here.

use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{
    BaseType, DocumentOperations, ExecutableDocument, OperationDefinition, OperationType, Selection,
};
use async_graphql::{InputType, Name, Value};
use async_graphql_value::Value as GqlValue;

use crate::app::Services;
use crate::auth::Caller;
use crate::graphql::check::{CheckInput, own_check};
use crate::graphql::context::RequestCtx;

/// A field of `Decision` the prepared path writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Allowed,
    Revision,
    Typename,
}

/// What a query text that is one `check` of the caller asks for.
#[derive(Debug, PartialEq, Eq)]
pub struct PreparedCheck {
    /// The operation's name when the text names it (a request may then name it too).
    operation: Option<Name>,
    /// The variable holding the `CheckInput`.
    variable: Name,
    /// The response key of the `check` field.
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
        let variable = check_variable(op)?;
        let [root] = &op.selection_set.node.items[..] else {
            return None;
        };
        let Selection::Field(check) = &root.node else {
            return None;
        };
        let check = &check.node;
        let [(argument, value)] = &check.arguments[..] else {
            return None;
        };
        let takes_variable = matches!(&value.node, GqlValue::Variable(v) if *v == variable);
        if check.name.node.as_str() != "check"
            || !check.directives.is_empty()
            || argument.node.as_str() != "input"
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
                "allowed" => Field::Allowed,
                "revision" => Field::Revision,
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
            key: check.response_key().node.clone(),
            fields,
        })
    }

    /// The answer to `request` (a request of this text), or `None` when the executor must
    /// give it.
    pub async fn answer(
        &self,
        services: &Services,
        ctx: &RequestCtx,
        request: &async_graphql::Request,
    ) -> Option<async_graphql::Response> {
        let Caller::User { user, .. } = &ctx.caller else {
            return None;
        };
        let named = match (&request.operation_name, &self.operation) {
            (None, _) => true,
            (Some(asked), Some(mine)) => asked.as_str() == mine.as_str(),
            (Some(_), None) => false,
        };
        if !named {
            return None;
        }
        let value = request.variables.get(self.variable.as_str())?.clone();
        let input = CheckInput::parse(Some(value)).ok()?;
        let decision = own_check(services, user.id, &input).await?;
        let mut out = IndexMap::with_capacity(self.fields.len());
        for (key, field) in &self.fields {
            let value = match field {
                Field::Allowed => Value::Boolean(decision.allowed),
                Field::Revision => Value::String(decision.revision_token()),
                Field::Typename => Value::String("Decision".to_owned()),
            };
            out.insert(key.clone(), value);
        }
        let mut data = IndexMap::with_capacity(1);
        data.insert(self.key.clone(), Value::Object(out));
        Some(async_graphql::Response::new(Value::Object(data)))
    }
}

/// The name of the operation's one variable, when the operation is a plain query whose one
/// variable is a `CheckInput!` without a default.
fn check_variable(op: &OperationDefinition) -> Option<Name> {
    if op.ty != OperationType::Query || !op.directives.is_empty() {
        return None;
    }
    let [var] = &op.variable_definitions[..] else {
        return None;
    };
    let var = &var.node;
    let ty = &var.var_type.node;
    let is_input = matches!(&ty.base, BaseType::Named(name) if name.as_str() == "CheckInput");
    (is_input && !ty.nullable && var.default_value.is_none() && var.directives.is_empty())
        .then(|| var.name.node.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

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
                key: Name::new("d"),
                fields: vec![
                    (Name::new("ok"), Field::Allowed),
                    (Name::new("revision"), Field::Revision),
                    (Name::new("__typename"), Field::Typename),
                ],
            })
        );
        for text in [
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
