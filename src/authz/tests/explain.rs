//! `explain`: the trace of each binding, and a decision always equal to `decide`'s.

use super::engine::{CASES, with_case};
use super::*;
use Node::*;

#[test]
fn decision_equals_decide_on_every_table_case() {
    for case in CASES {
        let (decided, explained) = with_case(case, |facts, check| {
            (decide(facts, check), explain(facts, check))
        });
        assert_eq!(explained.decision, decided, "{}", case.name);
        assert_eq!(
            explained.bindings.len(),
            case.bindings.len(),
            "{}",
            case.name
        );
    }
}

#[test]
fn traces_each_binding() {
    let catalog = Catalog::builtin();
    let roles = role_set(
        &catalog,
        &[
            &[
                "allow apps:*:read",
                "allow models:*:read",
                "deny apps:{p_a1}:*",
            ],
            &["allow *:*:*"],
        ],
    );
    let bindings = bindings(&[
        (1, Org, None),          // applies, at depth 0: policies 0 and 2 match
        (2, WsA, Some(0)),       // expired
        (2, PA2, None),          // sibling: not on the path
        (9, WsA, None),          // unknown role
        (2, PA1, Some(5)),       // applies at depth 2: policy 0 matches
        (2, OtherOrg, Some(-1)), // off the path and expired: not on the path
    ]);
    let facts = Facts {
        principal_active: true,
        scopes: None,
        bindings: &bindings,
        roles: &roles,
    };
    let path = PA1.path();
    let check = check(&catalog, "apps:read", &path, None);
    let explanation = explain(&facts, &check);

    type Summary = (Option<usize>, BindingStatus, Vec<(usize, Effect)>);
    let summary: Vec<Summary> = explanation
        .bindings
        .iter()
        .map(|t| {
            let matched = t
                .matched
                .iter()
                .map(|m| (m.policy_index, m.effect))
                .collect();
            (t.depth, t.status, matched)
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                Some(0),
                BindingStatus::Applies,
                vec![(0, Effect::Allow), (2, Effect::Deny)]
            ),
            (Some(1), BindingStatus::Expired, vec![]),
            (None, BindingStatus::NotOnPath, vec![]),
            (Some(1), BindingStatus::UnknownRole, vec![]),
            (Some(2), BindingStatus::Applies, vec![(0, Effect::Allow)]),
            (None, BindingStatus::NotOnPath, vec![]),
        ]
    );
    for (trace, binding) in explanation.bindings.iter().zip(&bindings) {
        assert_eq!(
            (trace.binding_id, trace.role_id, trace.node_id),
            (binding.id, binding.role_id, binding.node_id)
        );
    }
    let first = &explanation.bindings[0].matched[1];
    assert_eq!(
        catalog.format_permission(&first.permission),
        fill("apps:{p_a1}:*")
    );
    assert_eq!(
        explanation.decision,
        Decision {
            allowed: false,
            reasons: vec![Reason::Policy {
                binding_id: binding_id(1),
                role_id: role_id(1),
                node_id: Org.id(),
                policy_index: 2,
                effect: Effect::Deny,
            }],
        }
    );
    assert_eq!(explanation.decision, decide(&facts, &check));
}

#[test]
fn inactive_principal_still_gets_a_trace() {
    let catalog = Catalog::builtin();
    let roles = role_set(&catalog, &[&["allow *:*:*"]]);
    let bindings = bindings(&[(1, Org, None)]);
    let facts = Facts {
        principal_active: false,
        scopes: None,
        bindings: &bindings,
        roles: &roles,
    };
    let path = WsB.path();
    let check = check(&catalog, "sso:manage", &path, None);
    let explanation = explain(&facts, &check);
    assert_eq!(explanation.decision.reasons, [Reason::Inactive]);
    assert!(!explanation.decision.allowed);
    assert_eq!(explanation.bindings[0].status, BindingStatus::Applies);
    assert_eq!(explanation.bindings[0].matched.len(), 1);
    assert_eq!(explanation.decision, decide(&facts, &check));
}
