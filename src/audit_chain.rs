//! The audit trail's hash chain, PURE (no I/O): the canonical form of an event, its hash, and
//! the verdict on a chain read back in order.
//!
//! Each organization's events (and, apart, the events of no organization) form one chain.
//! An event records the hash of the event before it (`prev_hash`) and its own: SHA-256 over a
//! domain tag, `prev_hash` and the event's canonical form (a JSON object with its keys sorted,
//! at every depth, times in microseconds). So an event that was changed no longer matches its
//! own hash, and one that was removed, added or moved leaves an event whose `prev_hash` names
//! no event, or names one that is not just before it. The chain's order is its `seq`.
//!
//! What a chain alone cannot show is a rewrite of everything after a point by someone who can
//! compute SHA-256 too: the signed checkpoints (issue #16) pin the chain's head for that.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The `prev_hash` of a chain's first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Tags the hashed bytes, so that they mean nothing in another protocol.
const DOMAIN: &str = "iam-gateway audit event v1";

/// The chain of an organization's events; `Uuid::nil()` for events of no organization.
pub fn chain_of(organization_id: Option<Uuid>) -> Uuid {
    organization_id.unwrap_or_else(Uuid::nil)
}

/// The fields of an event that its hash covers, as they are stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Hashed<'a> {
    pub id: Uuid,
    pub organization_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
    pub actor_email: Option<&'a str>,
    pub actor_kind: Option<&'a str>,
    pub actor_credential_id: Option<Uuid>,
    pub impersonator_id: Option<Uuid>,
    pub action: &'a str,
    pub target_type: &'a str,
    pub target_id: Option<&'a str>,
    pub result: &'a str,
    pub before: Option<&'a Value>,
    pub after: Option<&'a Value>,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub created_at: DateTime<Utc>,
}

impl Hashed<'_> {
    /// The canonical form: a JSON object, keys sorted at every depth, no spaces.
    pub fn canonical(&self) -> String {
        let uuid = |u: Option<Uuid>| u.map_or(Value::Null, |u| Value::String(u.to_string()));
        let text = |s: Option<&str>| s.map_or(Value::Null, |s| Value::String(s.to_owned()));
        let json = |v: Option<&Value>| v.cloned().unwrap_or(Value::Null);
        let event = serde_json::json!({
            "id": self.id.to_string(),
            "organization_id": uuid(self.organization_id),
            "actor_id": uuid(self.actor_id),
            "actor_email": text(self.actor_email),
            "actor_kind": text(self.actor_kind),
            "actor_credential_id": uuid(self.actor_credential_id),
            "impersonator_id": uuid(self.impersonator_id),
            "action": self.action,
            "target_type": self.target_type,
            "target_id": text(self.target_id),
            "result": self.result,
            "before": json(self.before),
            "after": json(self.after),
            "ip": text(self.ip),
            "user_agent": text(self.user_agent),
            "request_id": text(self.request_id),
            "created_at": timestamp(self.created_at),
        });
        let mut out = String::with_capacity(512);
        write_canonical(&event, &mut out);
        out
    }

    /// The event's hash after the event whose hash is `prev_hash` (hex).
    pub fn hash(&self, prev_hash: &str) -> String {
        let mut h = Sha256::new();
        h.update(DOMAIN.as_bytes());
        h.update(b"\n");
        h.update(prev_hash.as_bytes());
        h.update(b"\n");
        h.update(self.canonical().as_bytes());
        hex(&h.finalize())
    }
}

/// A time as the chain writes it: UTC, microseconds, `Z`.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// `at` cut to whole microseconds: what every database keeps, so what is hashed.
pub fn to_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Writes `v` with object keys sorted at every depth (serde_json's own writer for strings
/// and numbers).
fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                write_canonical(&map[k.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// One event of a chain as it was read back, in `seq` order.
#[derive(Debug, Clone)]
pub struct Link<'a> {
    /// `None`: a row of the organization with no place in the chain.
    pub seq: Option<i64>,
    pub event: Hashed<'a>,
    pub prev_hash: Option<&'a str>,
    pub hash: Option<&'a str>,
}

/// What is wrong with a chain, at the first event where it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Break {
    /// The event's content no longer matches its hash.
    Modified { seq: i64, id: Uuid },
    /// Events are missing before this one (between it and the one before).
    Deleted { seq: i64, id: Uuid },
    /// This event was not written by the chain: it has no place in it, or the next event does
    /// not follow it.
    Inserted { seq: Option<i64>, id: Uuid },
    /// The event follows another event than the one before it.
    Reordered { seq: i64, id: Uuid },
    /// Events after the last one are missing (the chain's head says it went further).
    Truncated { last_seq: i64, head_seq: i64 },
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Modified { seq, id } => write!(f, "event {seq} ({id}) was modified"),
            Self::Deleted { seq, id } => {
                write!(f, "events before event {seq} ({id}) were deleted")
            }
            Self::Inserted { seq: Some(seq), id } => {
                write!(f, "event {seq} ({id}) was inserted")
            }
            Self::Inserted { seq: None, id } => {
                write!(f, "event {id} was inserted (it has no place in the chain)")
            }
            Self::Reordered { seq, id } => {
                write!(
                    f,
                    "event {seq} ({id}) was moved: it does not follow the event before it"
                )
            }
            Self::Truncated { last_seq, head_seq } => write!(
                f,
                "events after event {last_seq} were deleted (the chain reached event {head_seq})"
            ),
        }
    }
}

/// How a chain verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Events that verified (up to the first break).
    pub verified: u64,
    /// Events written before the chain began (no `seq`, older than its first event): not
    /// covered.
    pub before_chain: u64,
    pub broken: Option<Break>,
}

/// Verifies `links` (one chain, in `seq` order, rows without `seq` anywhere) against the
/// chain's head (`head_seq`, when known). Rows without a place in the chain are events from
/// before it began when they are older (by id, a UUIDv7) than its first event; otherwise they
/// were inserted.
pub fn verify(links: &[Link<'_>], head_seq: Option<i64>) -> Verdict {
    let mut verdict = Verdict {
        verified: 0,
        before_chain: 0,
        broken: None,
    };
    let first_chained = links
        .iter()
        .filter(|l| l.seq.is_some())
        .map(|l| l.event.id)
        .min();
    let chained: Vec<&Link<'_>> = links.iter().filter(|l| l.seq.is_some()).collect();
    for l in links.iter().filter(|l| l.seq.is_none()) {
        match first_chained {
            Some(first) if l.event.id > first => {
                verdict.broken = Some(Break::Inserted {
                    seq: None,
                    id: l.event.id,
                });
                return verdict;
            }
            _ => verdict.before_chain += 1,
        }
    }
    let hashes: std::collections::HashSet<&str> = chained.iter().filter_map(|l| l.hash).collect();
    let mut prev: Option<&Link<'_>> = None;
    for (i, l) in chained.iter().enumerate() {
        let seq = l.seq.unwrap_or_default();
        let id = l.event.id;
        let (Some(stored), Some(prev_hash)) = (l.hash, l.prev_hash) else {
            verdict.broken = Some(Break::Modified { seq, id });
            return verdict;
        };
        if l.event.hash(prev_hash) != stored {
            verdict.broken = Some(Break::Modified { seq, id });
            return verdict;
        }
        let expected_prev = prev.and_then(|p| p.hash).unwrap_or(GENESIS);
        let expected_seq = prev.and_then(|p| p.seq).map_or(seq, |s| s + 1);
        if prev_hash != expected_prev || seq != expected_seq {
            let before_prev = i.checked_sub(2).and_then(|j| chained[j].hash);
            let next_follows_prev = chained
                .get(i + 1)
                .and_then(|n| n.prev_hash)
                .is_some_and(|n| n == expected_prev);
            verdict.broken = Some(if seq + 1 == expected_seq {
                // A second event with the seq of the one before.
                Break::Inserted { seq: Some(seq), id }
            } else if i >= 2 && before_prev == Some(prev_hash) {
                // It follows the event two back: the one between was put there.
                let p = prev.map_or((None, id), |p| (p.seq, p.event.id));
                Break::Inserted { seq: p.0, id: p.1 }
            } else if prev_hash != expected_prev && hashes.contains(prev_hash) {
                Break::Reordered { seq, id }
            } else if next_follows_prev {
                // The next event follows the one before: this one was put between them.
                Break::Inserted { seq: Some(seq), id }
            } else if prev_hash == expected_prev {
                // It follows the right event; only its seq was changed.
                Break::Modified { seq, id }
            } else {
                Break::Deleted { seq, id }
            });
            return verdict;
        }
        verdict.verified += 1;
        prev = Some(l);
    }
    if let (Some(head), Some(last)) = (head_seq, prev.and_then(|p| p.seq))
        && head > last
    {
        verdict.broken = Some(Break::Truncated {
            last_seq: last,
            head_seq: head,
        });
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u128, action: &'static str) -> Hashed<'static> {
        Hashed {
            id: Uuid::from_u128(n),
            organization_id: Some(Uuid::from_u128(7)),
            actor_id: None,
            actor_email: Some("ada@example.com"),
            actor_kind: Some("user"),
            actor_credential_id: None,
            impersonator_id: None,
            action,
            target_type: "workspace",
            target_id: Some("w"),
            result: "success",
            before: None,
            after: None,
            ip: None,
            user_agent: None,
            request_id: None,
            created_at: DateTime::from_timestamp_micros(1_700_000_000_000_000 + n as i64).unwrap(),
        }
    }

    /// A chain of `n` events, with their hashes.
    fn chain(n: usize) -> Vec<(Hashed<'static>, String, String)> {
        let mut prev = GENESIS.to_owned();
        let mut out = Vec::new();
        for i in 0..n {
            let e = event(i as u128 + 1, "workspace.create");
            let h = e.hash(&prev);
            out.push((e, prev.clone(), h.clone()));
            prev = h;
        }
        out
    }

    fn links<'a>(rows: &'a [(Hashed<'static>, String, String)]) -> Vec<Link<'a>> {
        rows.iter()
            .enumerate()
            .map(|(i, (e, p, h))| Link {
                seq: Some(i as i64 + 1),
                event: e.clone(),
                prev_hash: Some(p),
                hash: Some(h),
            })
            .collect()
    }

    #[test]
    fn the_canonical_form_sorts_keys_at_every_depth() {
        let after = serde_json::json!({ "b": 1, "a": { "z": [ { "y": 1, "x": 2 } ], "c": "é\"" } });
        let e = Hashed {
            after: Some(&after),
            ..event(1, "x")
        };
        let c = e.canonical();
        assert!(
            c.contains(r#""after":{"a":{"c":"é\"","z":[{"x":2,"y":1}]},"b":1}"#),
            "{c}"
        );
        let keys: Vec<&str> = c.match_indices("\":").map(|(i, _)| &c[..i]).collect();
        assert!(!keys.is_empty());
        assert!(
            c.starts_with(r#"{"action":"x","actor_credential_id":null"#),
            "{c}"
        );
        assert!(
            c.contains(r#""created_at":"2023-11-14T22:13:20.000001Z""#),
            "{c}"
        );
    }

    #[test]
    fn an_intact_chain_verifies_and_each_kind_of_tampering_is_named() {
        let rows = chain(5);
        let intact = links(&rows);
        assert_eq!(
            verify(&intact, Some(5)),
            Verdict {
                verified: 5,
                before_chain: 0,
                broken: None
            }
        );
        // Modified: event 3's action.
        let mut l = links(&rows);
        l[2].event.action = "workspace.delete";
        assert_eq!(
            verify(&l, None).broken,
            Some(Break::Modified {
                seq: 3,
                id: Uuid::from_u128(3)
            })
        );
        // Deleted: event 3 gone, and gone with the seqs renumbered.
        let mut l = links(&rows);
        l.remove(2);
        assert_eq!(
            verify(&l, None).broken,
            Some(Break::Deleted {
                seq: 4,
                id: Uuid::from_u128(4)
            })
        );
        for (i, link) in l.iter_mut().enumerate() {
            link.seq = Some(i as i64 + 1);
        }
        assert_eq!(
            verify(&l, None).broken,
            Some(Break::Deleted {
                seq: 3,
                id: Uuid::from_u128(4)
            })
        );
        // Truncated: the last two gone; the head knows.
        let l = links(&rows[..3]);
        assert_eq!(
            verify(&l, Some(5)).broken,
            Some(Break::Truncated {
                last_seq: 3,
                head_seq: 5
            })
        );
        // Inserted: a forged event with a correct hash after event 2, the rest renumbered.
        let forged = event(100, "role.create");
        let forged_hash = forged.hash(&rows[1].2);
        let mut l = links(&rows);
        l.insert(
            2,
            Link {
                seq: Some(3),
                event: forged.clone(),
                prev_hash: Some(&rows[1].2),
                hash: Some(&forged_hash),
            },
        );
        for (i, link) in l.iter_mut().enumerate() {
            link.seq = Some(i as i64 + 1);
        }
        assert_eq!(
            verify(&l, None).broken,
            Some(Break::Inserted {
                seq: Some(3),
                id: Uuid::from_u128(100)
            }),
            "the event after the forged one follows the one before it"
        );
        // ...or with no place in the chain at all.
        let mut l = links(&rows);
        l.push(Link {
            seq: None,
            event: event(50, "role.create"),
            prev_hash: None,
            hash: None,
        });
        assert_eq!(
            verify(&l, None).broken,
            Some(Break::Inserted {
                seq: None,
                id: Uuid::from_u128(50)
            })
        );
        // Reordered: events 3 and 4 swap places (and seqs).
        let mut l = links(&rows);
        l.swap(2, 3);
        l[2].seq = Some(3);
        l[3].seq = Some(4);
        assert_eq!(
            verify(&l, None).broken,
            Some(Break::Reordered {
                seq: 3,
                id: Uuid::from_u128(4)
            })
        );
        // Rows from before the chain are counted apart.
        let mut l = links(&rows);
        l.insert(
            0,
            Link {
                seq: None,
                event: event(0, "organization.create"),
                prev_hash: None,
                hash: None,
            },
        );
        let v = verify(&l, Some(5));
        assert_eq!((v.verified, v.before_chain, v.broken), (5, 1, None));
    }
}
