//! What a query costs, and the budget it must fit before anything runs.
//!
//! async-graphql counts one per field, children included, but knows nothing of lists: a
//! `projects { workspace { projects { … } } }` chain costs (list size)^depth resolver calls
//! while counting a handful of fields. So every field that returns a list of objects is priced
//! here by how many items it can return: its page size (`first`, `limit`), clamped to the most
//! the resolver accepts; a list without a page argument by its most items when it has a bound
//! (`checkMany`), else [`UNPAGED`] items. Its children are paid once per item. Lists of plain
//! values that come loaded with their parent (a decision's reasons, a member's roles, a role's
//! policies, an invitation's grants) have no resolver under them that could multiply work, and
//! keep async-graphql's price (one, plus their selection once).
//!
//! The price is computed during validation, from the request's variables (a page size given
//! by a variable is priced by its value), on every request: the fast validation mode of
//! remembered texts (`http/documents.rs`) computes it too, so a text that passed once with a
//! small page cannot run again with a large one. async-graphql's own limit
//! (`limit_complexity`) refuses a query over `graphql_max_complexity` before any resolver
//! runs; [`Pricing`] turns its bare "Query is too complex." into BAD_USER_INPUT naming the
//! cost and the limit, validating the refused text once more on a schema that only prices
//! (the price is not kept on the way in: reading it needs a schema extension, and an
//! extension slows every answer; see `ApiSchema`).

use std::sync::{Arc, OnceLock};

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextValidation};
use async_graphql::{
    ErrorExtensions, Request, Response, ServerError, ValidationResult, Value, Variables,
};

use super::error::ApiError;

/// The items a list without a page argument is priced at (the workspaces of an organization,
/// the projects of a workspace, a member's roles...). Such lists can be longer; the budget
/// then underestimates them, but the loaders (`loaders.rs`) keep the store work at one query
/// per level.
pub const UNPAGED: usize = 20;

/// The most one field can cost: sums of many such fields stay far from overflowing.
const CEILING: usize = 1 << 40;

/// The price of a list field of `items` items whose selection costs `child` each.
pub fn list(items: usize, child: usize) -> usize {
    items
        .saturating_mul(child.max(1))
        .saturating_add(1)
        .min(CEILING)
}

/// The items a page argument asks for: `given`, or `default` when omitted, within `1..=max`
/// (the resolver refuses anything outside; pricing it at the bound is enough).
pub fn page(given: Option<i32>, default: i32, max: i32) -> usize {
    usize::try_from(given.unwrap_or(default).clamp(1, max)).unwrap_or(1)
}

/// What is needed to price a request if async-graphql refuses it as too complex: its text
/// (taken: the executor runs the parsed document and never reads it again), its operation name,
/// and those of its variables that can set a price: page sizes are `Int` arguments, so only
/// variables holding a number (or null) are kept. Copying the rest would cost every request
/// (a `checkMany` of fifty inputs most) for the rare one that is refused.
pub struct Pricing {
    query: String,
    variables: Variables,
    operation_name: Option<String>,
    limit: usize,
}

/// The variables of `all` that hold a number or null.
fn numbers_of(all: &Variables) -> Variables {
    let mut kept = Variables::default();
    for (name, value) in all.iter() {
        if matches!(value, Value::Number(_) | Value::Null) {
            kept.insert(name.clone(), value.clone());
        }
    }
    kept
}

/// async-graphql's refusal of a query over `limit_complexity`.
const TOO_COMPLEX: &str = "Query is too complex.";

impl Pricing {
    /// Takes what pricing needs from `request`, whose document must already be parsed
    /// (`credentials::admit` parses it).
    pub fn take(request: &mut Request, limit: usize) -> Self {
        Self {
            query: std::mem::take(&mut request.query),
            variables: numbers_of(&request.variables),
            operation_name: request.operation_name.clone(),
            limit,
        }
    }

    /// `response`, with async-graphql's bare refusal of a costly query replaced by one that
    /// names the cost and the limit (priced on the schema in `pricing`, built on first use).
    pub async fn explain(&self, response: Response, pricing: &OnceLock<super::Inner>) -> Response {
        if !response.errors.iter().any(|e| e.message == TOO_COMPLEX) {
            return response;
        }
        let mut request = Request::new(self.query.clone()).variables(self.variables.clone());
        if let Some(name) = &self.operation_name {
            request = request.operation_name(name.clone());
        }
        // The pricing schema refuses everything, with the price. It validates in the fast mode
        // (structure, depth and cost only), since the variables it has are the numbers alone.
        let priced = pricing.get_or_init(pricing_schema).execute(request).await;
        let errors = priced
            .errors
            .into_iter()
            .map(|e| match cost_in(&e) {
                Some(cost) => over_budget(cost, self.limit),
                None => e,
            })
            .collect();
        Response::from_errors(errors)
    }
}

/// The schema that runs nothing and prices everything: the API's types, no data, and a
/// validation extension whose limit is zero.
fn pricing_schema() -> super::Inner {
    async_graphql::Schema::build(
        super::Query::default(),
        super::Mutation::default(),
        super::Subscription,
    )
    .limit_recursive_depth(super::RECURSIVE_DEPTH)
    .validation_mode(async_graphql::ValidationMode::Fast)
    .extension(PriceEverything)
    .finish()
}

/// The cost an error of [`PriceEverything`] carries.
fn cost_in(error: &ServerError) -> Option<usize> {
    if error.message != PRICED {
        return None;
    }
    match error.extensions.as_ref()?.get("cost")? {
        async_graphql::Value::Number(n) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
        _ => None,
    }
}

const PRICED: &str = "priced";

struct PriceEverything;

impl ExtensionFactory for PriceEverything {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(PriceEverything)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for PriceEverything {
    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        let cost = u64::try_from(result.complexity).unwrap_or(u64::MAX);
        let error = async_graphql::Error::new(PRICED).extend_with(|_, ext| ext.set("cost", cost));
        Err(vec![error.into_server_error(async_graphql::Pos::default())])
    }
}

/// The error of a query over budget: BAD_USER_INPUT, with `cost` and `limit` in extensions.
fn over_budget(cost: usize, limit: usize) -> ServerError {
    let error = async_graphql::Error::from(ApiError::bad_input(
        "query",
        format!(
            "this query would cost {cost}, more than the limit of {limit} (`graphql_max_complexity`): every list multiplies the cost of what it selects by its page size (`first`), or by {UNPAGED} for a list without one; ask for smaller pages or fewer nested lists"
        ),
    ))
    .extend_with(|_, ext| {
        ext.set("cost", u64::try_from(cost).unwrap_or(u64::MAX));
        ext.set("limit", u64::try_from(limit).unwrap_or(u64::MAX));
    });
    ServerError {
        message: error.message,
        source: None,
        locations: Vec::new(),
        path: Vec::new(),
        extensions: error.extensions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_multiply_and_never_overflow() {
        assert_eq!(list(30, 2), 61);
        assert_eq!(list(30, 0), 31);
        let mut cost = 1;
        for _ in 0..64 {
            cost = list(usize::MAX, cost);
        }
        assert_eq!(cost, CEILING);
        assert_eq!(page(None, 50, 200), 50);
        assert_eq!(page(Some(1_000_000), 50, 200), 200);
        assert_eq!(page(Some(-5), 50, 200), 1);
    }

    /// The cost of `query` with `variables`, read from the refusal of a schema whose limit is
    /// zero (nothing runs).
    async fn cost_of(query: &str, variables: serde_json::Value) -> u64 {
        let config = crate::config::Config {
            graphql_max_complexity: 0,
            ..Default::default()
        };
        let schema = crate::graphql::build_schema(&config, None);
        let request = async_graphql::Request::new(query)
            .variables(async_graphql::Variables::from_json(variables));
        let response = schema.execute(request).await;
        assert_eq!(response.errors.len(), 1, "{:?}", response.errors);
        let cost = response.errors.first().and_then(|e| {
            let ext = e.extensions.as_ref()?;
            match ext.get("cost")? {
                async_graphql::Value::Number(n) => n.as_u64(),
                _ => None,
            }
        });
        cost.unwrap_or_else(|| panic!("no cost in {:?}", response.errors))
    }

    #[tokio::test]
    async fn the_readmes_examples_cost_what_it_says() {
        let tree = "{ me { organizations { workspaces { projects { path } } } } }";
        assert_eq!(cost_of(tree, serde_json::json!({})).await, 8422);
        let mut nested = "id".to_owned();
        for _ in 0..6 {
            nested = format!("projects {{ workspace {{ {nested} }} }}");
        }
        let seven =
            format!("{{ workspace(id: \"x\") {{ projects {{ workspace {{ {nested} }} }} }} }}");
        assert!(cost_of(&seven, serde_json::json!({})).await > 20u64.pow(7));
        let paged = "query($n: Int) { organization(slug: \"a\") { members(first: $n) { members { email } } } }";
        let small = cost_of(paged, serde_json::json!({ "n": 2 })).await;
        let large = cost_of(paged, serde_json::json!({ "n": 200 })).await;
        let default = cost_of(paged, serde_json::json!({ "n": null })).await;
        assert_eq!(
            (small, large, default),
            (1 + 1 + 2 * 2, 1 + 1 + 200 * 2, 1 + 1 + 50 * 2)
        );
    }
}
