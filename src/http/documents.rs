//! Reading a GraphQL request: its JSON body goes straight into async-graphql's `Request`, and
//! the query documents seen before are taken already parsed.
//!
//! Frontends and services send the same few query texts over and over with other variables, so
//! parsing each text once saves most of the work of parsing. Only the parse is remembered:
//! validation, limits and execution run for every request as before. Memory is bounded by the
//! total length of the remembered texts.

use std::sync::Arc;

use async_graphql::parser::types::ExecutableDocument;

/// The total length of the query texts remembered.
const MAX_TOTAL_BYTES: u64 = 4 << 20;
/// Longer texts are parsed every time (they are rare, and would crowd out the rest).
const MAX_TEXT_BYTES: usize = 16 << 10;

#[derive(Clone)]
pub struct Documents {
    // Behind an `Arc`: the handler state (this included) is cloned for every request, and a
    // moka cache's own clone is many reference counts.
    parsed: Arc<moka::sync::Cache<String, Arc<ExecutableDocument>>>,
}

impl Default for Documents {
    fn default() -> Self {
        Self {
            parsed: Arc::new(
                moka::sync::Cache::builder()
                    .weigher(|text: &String, _| u32::try_from(text.len()).unwrap_or(u32::MAX))
                    .max_capacity(MAX_TOTAL_BYTES)
                    .build(),
            ),
        }
    }
}

/// Why a request body is not a GraphQL request.
pub struct BadBody(pub String);

impl Documents {
    /// Reads a POST body (`{"query": ..., "variables": ..., "operationName": ...}`) and gives
    /// it its parsed document when the text parses. A text that does not parse is left for the
    /// schema, which reports the syntax error as usual.
    pub fn request(&self, body: &[u8]) -> Result<async_graphql::Request, BadBody> {
        let mut request: async_graphql::Request = serde_json::from_slice(body).map_err(|e| {
            BadBody(format!(
                "the body must be one GraphQL request as JSON (`{{\"query\": ...}}`): {e}"
            ))
        })?;
        if let Some(doc) = self.parsed.get(request.query.as_str()) {
            request.set_parsed_query(ExecutableDocument::clone(&doc));
        } else if request.query.len() <= MAX_TEXT_BYTES
            && let Ok(doc) = async_graphql::parser::parse_query(&request.query)
        {
            self.parsed
                .insert(request.query.clone(), Arc::new(doc.clone()));
            request.set_parsed_query(doc);
        }
        Ok(request)
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
        let first = docs.request(body).ok().map(|r| r.variables.len());
        assert_eq!(first, Some(1));
        docs.parsed.run_pending_tasks();
        assert_eq!(docs.parsed.entry_count(), 1);
        assert!(docs.request(body).is_ok());
        docs.parsed.run_pending_tasks();
        assert_eq!(docs.parsed.entry_count(), 1);
        // A syntax error is left to the schema, and not remembered.
        assert!(docs.request(br#"{"query": "{ node("}"#).is_ok());
        docs.parsed.run_pending_tasks();
        assert_eq!(docs.parsed.entry_count(), 1);
        // Not JSON, or a batch: refused with a reason.
        assert!(docs.request(b"query { x }").is_err());
        assert!(docs.request(br#"[{"query": "{ a }"}]"#).is_err());
    }
}
