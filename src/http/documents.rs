//! Reading a GraphQL request: its JSON body goes straight into async-graphql's `Request`, and
//! the query documents seen before are taken already parsed, and already validated.
//!
//! Frontends and services send the same few query texts over and over with other variables, so
//! parsing each text once saves most of the work of parsing. Memory is bounded by the total
//! length of the remembered texts.
//!
//! Validation is remembered too, with care. Of GraphQL's validation rules only one looks at
//! the request's variables (argument values of the right type); every other rule depends on
//! the text alone. What that one rule decides, in turn, depends on the values' *shape* (the
//! fields every input object names, and the kind of every value) except where a value of the
//! right kind may still be wrong (a string that is no enum member or no date), and those the
//! resolvers' argument parsing refuses anyway, as a client error. So a text remembers the
//! shapes of the variables it ran with cleanly (no error at all) under the full validation;
//! a later request whose text and variables' shape were seen so runs under the schema's fast
//! validation mode, which still applies the depth and cost limits and the structural rules
//! every time. The cost is computed from this request's variables, values and all (a page size
//! given by a variable is priced by its value, see `graphql/cost.rs`), so a text that passed
//! with a small page is refused when it comes back with a large one. Any other shape (an
//! unknown or misspelt input field above all, which argument parsing would silently ignore)
//! gets the full validation.
//!
//! Shapes are hashed with the process's random keys, so a client cannot craft one that
//! collides with a shape seen before.

use std::borrow::Cow;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, RwLock};

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Name, Value as ConstValue};
use serde::Deserialize;

use super::prepared::{Inputs, PreparedCheck};
use crate::graphql::context::RequestCtx;
use crate::services::Services;

/// The total length of the query texts remembered.
const MAX_TOTAL_BYTES: u64 = 4 << 20;
/// Longer texts are parsed every time (they are rare, and would crowd out the rest).
const MAX_TEXT_BYTES: usize = 16 << 10;
/// Most variable shapes remembered per text.
const MAX_SHAPES: usize = 32;

/// A query text seen before: its document, and the shapes of the variables (with the operation
/// name) it passed the full validation with.
struct Known {
    doc: ExecutableDocument,
    validated: RwLock<Vec<u64>>,
    /// The text as a prepared `check`, when it is one.
    check: Option<PreparedCheck>,
}

pub struct Documents {
    known: moka::sync::Cache<String, Arc<Known>>,
    keys: RandomState,
    /// Whether remembered validations and prepared checks are used (`prepared_check`); texts
    /// are remembered parsed either way.
    fast_path: bool,
}

impl Default for Documents {
    fn default() -> Self {
        Self::new(true)
    }
}

impl Documents {
    /// The memo of query texts; with `fast_path` off (`IAM_PREPARED_CHECK=false`) every
    /// request gets the full validation and the executor.
    pub fn new(fast_path: bool) -> Self {
        Self {
            fast_path,
            known: moka::sync::Cache::builder()
                .weigher(|text: &String, _| u32::try_from(text.len()).unwrap_or(u32::MAX))
                .max_capacity(MAX_TOTAL_BYTES)
                .build(),
            keys: RandomState::new(),
        }
    }
}

/// Why a request body is not a GraphQL request.
pub struct BadBody(pub String);

/// A request read from its body, with what is known of its text.
pub struct Incoming {
    pub request: async_graphql::Request,
    known: Option<Arc<Known>>,
    shape: u64,
    /// Whether a validation remembered for the text may be relied on.
    fast_path: bool,
}

impl Incoming {
    /// Whether the text passed the full validation before with variables of this shape (and
    /// ran without an error).
    pub fn validated(&self) -> bool {
        self.fast_path
            && self.known.as_ref().is_some_and(|k| {
                k.validated
                    .read()
                    .is_ok_and(|shapes| shapes.contains(&self.shape))
            })
    }

    /// The request for the executor, with its document when the text was parsed before.
    pub fn into_request(self) -> async_graphql::Request {
        self.into_parts().0
    }

    /// Splits off the request for the executor, keeping what is needed to record how it ran.
    pub fn into_parts(self) -> (async_graphql::Request, Outcome) {
        let mut request = self.request;
        if let Some(known) = &self.known {
            request.set_parsed_query(known.doc.clone());
        }
        (
            request,
            Outcome {
                known: self.known,
                shape: self.shape,
            },
        )
    }
}

/// Records, after a request ran under the full validation, that its text and variables'
/// shape passed it.
pub struct Outcome {
    known: Option<Arc<Known>>,
    shape: u64,
}

impl Outcome {
    /// A response without errors means the text passed every rule with these variables.
    pub fn ran(&self, response: &async_graphql::Response) {
        if !response.errors.is_empty() {
            return;
        }
        if let Some(known) = &self.known
            && let Ok(mut shapes) = known.validated.write()
            && shapes.len() < MAX_SHAPES
            && !shapes.contains(&self.shape)
        {
            shapes.push(self.shape);
        }
    }
}

/// A request body, read as far as its text demands.
pub enum Reading {
    /// A prepared `check` (see `prepared.rs`) with its input.
    Check(PreparedRequest),
    /// A request for the executor (boxed: it is much the larger).
    Request(Box<Incoming>),
}

/// A request of a prepared `check` text.
pub struct PreparedRequest {
    known: Arc<Known>,
    inputs: Inputs,
}

impl PreparedRequest {
    /// The answer, or `None` when the executor must give it (the body is then read again, as a
    /// request for it).
    pub async fn answer(
        &self,
        services: &Services,
        ctx: &RequestCtx,
    ) -> Option<async_graphql::Response> {
        let check = self.known.check.as_ref()?;
        check.answer(services, ctx, &self.inputs).await
    }
}

/// The text and the operation's name of a request body (its other members are skipped).
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    query: Cow<'a, str>,
    #[serde(default, borrow, rename = "operationName")]
    operation_name: Option<Cow<'a, str>>,
}

/// Whether a body's text was looked up among the known ones already.
enum Lookup {
    Done(Option<Arc<Known>>),
    Pending,
}

/// The input of a prepared `check`, when `known` is one, its text ran cleanly before, and the
/// body's variables are plain.
fn prepared_input(known: &Known, body: &[u8], envelope: &Envelope<'_>) -> Option<Inputs> {
    let check = known.check.as_ref()?;
    let ran_cleanly = known
        .validated
        .read()
        .is_ok_and(|shapes| !shapes.is_empty());
    if !ran_cleanly {
        return None;
    }
    check.read(body, envelope.operation_name.as_deref())
}

impl Documents {
    /// Reads a POST body: as a prepared `check` when its text is one that ran cleanly before
    /// and its variables are plain, else as a request for the executor.
    ///
    /// The text is read first, alone (the rest of the body is skipped, not built), so that a
    /// prepared `check` never builds the executor's request; other bodies are then read whole,
    /// reusing the text's lookup.
    pub fn read(&self, body: &[u8]) -> Result<Reading, BadBody> {
        let seen = match serde_json::from_slice::<Envelope<'_>>(body) {
            Ok(_) if !self.fast_path => Lookup::Pending,
            Ok(envelope) => {
                let seen = self.known.get(envelope.query.as_ref());
                if let Some(known) = &seen
                    && let Some(inputs) = prepared_input(known, body, &envelope)
                {
                    return Ok(Reading::Check(PreparedRequest {
                        known: known.clone(),
                        inputs,
                    }));
                }
                Lookup::Done(seen)
            }
            Err(_) => Lookup::Pending,
        };
        self.read_request(body, seen)
            .map(|incoming| Reading::Request(Box::new(incoming)))
    }

    /// Reads a POST body (`{"query": ..., "variables": ..., "operationName": ...}`) as a
    /// request for the executor.
    pub fn request(&self, body: &[u8]) -> Result<Incoming, BadBody> {
        self.read_request(body, Lookup::Pending)
    }

    /// Reads a body as a request for the executor, and gives it its parsed document when the
    /// text parses (looking the text up unless `seen` did). A text that does not parse is left
    /// for the schema, which reports the syntax error as usual.
    fn read_request(&self, body: &[u8], seen: Lookup) -> Result<Incoming, BadBody> {
        let request: async_graphql::Request = serde_json::from_slice(body).map_err(|e| {
            BadBody(format!(
                "the body must be one GraphQL request as JSON (`{{\"query\": ...}}`): {e}"
            ))
        })?;
        let seen = match seen {
            Lookup::Done(seen) => seen,
            Lookup::Pending => self.known.get(request.query.as_str()),
        };
        let known = match seen {
            Some(known) => Some(known),
            None if request.query.len() <= MAX_TEXT_BYTES => {
                match async_graphql::parser::parse_query(&request.query) {
                    Ok(doc) => {
                        let known = Arc::new(Known {
                            check: PreparedCheck::of(&doc),
                            doc,
                            validated: RwLock::new(Vec::new()),
                        });
                        self.known.insert(request.query.clone(), known.clone());
                        Some(known)
                    }
                    Err(_) => None,
                }
            }
            None => None,
        };
        let shape = match &known {
            Some(_) => self.shape_of(&request),
            None => 0,
        };
        Ok(Incoming {
            request,
            known,
            shape,
            fast_path: self.fast_path,
        })
    }

    /// The hash of the operation name and the variables' shape: their names, and for each
    /// value its kind, every field name of an object, and the distinct shapes of a list's items.
    fn shape_of(&self, request: &async_graphql::Request) -> u64 {
        let mut h = self.keys.build_hasher();
        request.operation_name.hash(&mut h);
        request.variables.len().hash(&mut h);
        for (name, value) in request.variables.iter() {
            name.as_str().hash(&mut h);
            self.shape(value, &mut h);
        }
        h.finish()
    }

    fn shape(&self, value: &ConstValue, h: &mut impl Hasher) {
        match value {
            ConstValue::Null => 0u8.hash(h),
            ConstValue::Number(_) => 1u8.hash(h),
            ConstValue::String(_) => 2u8.hash(h),
            ConstValue::Boolean(_) => 3u8.hash(h),
            ConstValue::Binary(_) => 4u8.hash(h),
            ConstValue::Enum(name) => {
                5u8.hash(h);
                name.as_str().hash(h);
            }
            ConstValue::List(items) => {
                6u8.hash(h);
                let mut kinds: Vec<u64> = items
                    .iter()
                    .map(|item| {
                        let mut ih = self.keys.build_hasher();
                        self.shape(item, &mut ih);
                        ih.finish()
                    })
                    .collect();
                kinds.sort_unstable();
                kinds.dedup();
                kinds.hash(h);
            }
            ConstValue::Object(fields) => {
                7u8.hash(h);
                fields.len().hash(h);
                for (name, value) in fields {
                    Name::as_str(name).hash(h);
                    self.shape(value, h);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_is_parsed_once_and_bad_bodies_are_refused() {
        let docs = Documents::default();
        let body =
            br#"{"query": "query($i: ID!) { node(id: $i) { id } }", "variables": {"i": "x"}}"#;
        let first = docs.request(body).ok().map(|r| r.request.variables.len());
        assert_eq!(first, Some(1));
        docs.known.run_pending_tasks();
        assert_eq!(docs.known.entry_count(), 1);
        assert!(docs.request(body).is_ok());
        docs.known.run_pending_tasks();
        assert_eq!(docs.known.entry_count(), 1);
        // A syntax error is left to the schema, and not remembered.
        assert!(docs.request(br#"{"query": "{ node("}"#).is_ok());
        docs.known.run_pending_tasks();
        assert_eq!(docs.known.entry_count(), 1);
        // Not JSON, or a batch: refused with a reason.
        assert!(docs.request(b"query { x }").is_err());
        assert!(docs.request(br#"[{"query": "{ a }"}]"#).is_err());
    }

    #[test]
    fn a_text_counts_as_validated_only_after_a_clean_run() -> Result<(), &'static str> {
        let docs = Documents::default();
        let read = |body: &[u8]| docs.request(body).map_err(|_| "refused");
        let body = br#"{"query": "{ a }"}"#;
        let incoming = read(body)?;
        assert!(!incoming.validated());
        let (_, outcome) = incoming.into_parts();
        let failed =
            async_graphql::Response::from_errors(vec![async_graphql::ServerError::new("no", None)]);
        outcome.ran(&failed);
        assert!(!read(body)?.validated());
        outcome.ran(&async_graphql::Response::new(async_graphql::Value::Null));
        assert!(read(body)?.validated());
        // Validated for one shape of variables: other values of that shape share it, other
        // shapes (an extra field, a value of another kind, another operation) do not.
        let with = |vars: &str| {
            format!(r#"{{"query": "query($i: X) {{ a(i: $i) }}", "variables": {vars}}}"#)
        };
        let (_, outcome) =
            read(with(r#"{"i": {"f": "x", "l": [{"g": 1}]}}"#).as_bytes())?.into_parts();
        outcome.ran(&async_graphql::Response::new(async_graphql::Value::Null));
        for (vars, known) in [
            (r#"{"i": {"f": "y", "l": [{"g": 2}, {"g": 3}]}}"#, true),
            (r#"{"i": {"f": "y", "l": []}}"#, false),
            (r#"{"i": {"f": "y", "l": [{"g": 2}, {"h": 3}]}}"#, false),
            (r#"{"i": {"f": "x", "F": "x", "l": [{"g": 1}]}}"#, false),
            (r#"{"i": {"f": 1, "l": [{"g": 1}]}}"#, false),
            (r#"{"i": null}"#, false),
            (r#"{}"#, false),
        ] {
            assert_eq!(read(with(vars).as_bytes())?.validated(), known, "{vars}");
        }
        // Unparsable texts are never marked.
        let bad = br#"{"query": "{ a("}"#;
        let (_, outcome) = read(bad)?.into_parts();
        outcome.ran(&async_graphql::Response::new(async_graphql::Value::Null));
        assert!(!read(bad)?.validated());
        Ok(())
    }
}
