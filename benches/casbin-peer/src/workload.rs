//! The data sets and the checks of the scale benchmarks, defined once and shared by
//! `benches/scale.rs` (which writes them into PostgreSQL with set-based SQL that follows the
//! same formulas, and checks the rows it reads back against this file) and by the casbin-rs
//! peer (which builds them in memory).
//!
//! Every id is derived from an index, so both sides name the same rows without sharing any
//! state: `KKKKKKKK-0000-4000-8000-NNNNNNNNNNNN`, `K` the kind of row, `N` its index in hex.
//!
//! The shape of one organization is the same in both sets: 10 workspaces of 10 projects each,
//! 2,000 members, 5 bindings per member (one at the organization, two at workspaces, two at
//! projects), so a principal's facts and a check cost the same work in both. What differs is
//! how many of them there are around it: the large set is 100 such organizations, with
//! 100,000 users each a member of two of them.

use uuid::Uuid;

/// Bindings per membership (the formulas of [`Shape::binding`] are written for five).
pub const BINDINGS_PER_MEMBERSHIP: u64 = 5;
/// A user's `k`-th organization is `(user + k * ORG_STRIDE) % orgs`.
pub const ORG_STRIDE: u64 = 37;
/// Where a membership's bindings go, and to which roles, comes from
/// `h = s * MIX_FACTOR % MIX_MODULUS` (a multiplicative hash modulo the first prime above
/// 2^32), not from `s` itself: the members of one organization of the large set have
/// memberships `s` that are all alike modulo 200, and formulas linear in `s` would put them
/// all in the same few workspaces with the same roles. With `h`, each organization of either
/// set spreads its members' bindings evenly over its workspaces, projects and roles.
pub const MIX_FACTOR: u64 = 2_654_435_761;
pub const MIX_MODULUS: u64 = 4_294_967_311;

/// The built-in roles as `migration::seed::BUILTIN_ROLES` lists them: key and id. The scale
/// bench checks that the two agree.
pub const ROLES: [(&str, Uuid); 4] = [
    (
        "admin",
        Uuid::from_u128(0x00000001_0000_4000_8000_000000000001),
    ),
    (
        "developer",
        Uuid::from_u128(0x00000001_0000_4000_8000_000000000002),
    ),
    (
        "operator",
        Uuid::from_u128(0x00000001_0000_4000_8000_000000000003),
    ),
    (
        "viewer",
        Uuid::from_u128(0x00000001_0000_4000_8000_000000000004),
    ),
];

/// The kind of row an id names (its first eight hex digits).
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Org = 0x0a00_0000,
    Workspace = 0x0b00_0000,
    Project = 0x0c00_0000,
    User = 0x0d00_0000,
    Membership = 0x0e00_0000,
    Binding = 0x0f00_0000,
    /// Teams, their memberships and bindings: written by `scale.rs` only (the casbin-rs peer
    /// has no teams), see [`teams`].
    #[allow(dead_code)]
    Team = 0x1000_0000,
    #[allow(dead_code)]
    TeamMember = 0x1100_0000,
    #[allow(dead_code)]
    TeamBinding = 0x1200_0000,
}

impl Kind {
    /// The id of row `n` of this kind.
    pub fn id(self, n: u64) -> Uuid {
        Uuid::from_u128(
            ((self as u128) << 96) | (0x4000u128 << 64) | (0x8000u128 << 48) | u128::from(n),
        )
    }

    /// The same id as an SQL expression of the integer expression `n`.
    pub fn sql(self, n: &str) -> String {
        format!(
            "('{:08x}-0000-4000-8000-' || lpad(to_hex(({n})::bigint), 12, '0'))::uuid",
            self as u32
        )
    }
}

/// How many of everything a data set has.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub name: &'static str,
    pub orgs: u64,
    /// Per organization.
    pub workspaces: u64,
    /// Per workspace.
    pub projects: u64,
    pub users: u64,
    pub orgs_per_user: u64,
}

pub const SMALL: Shape = Shape {
    name: "small",
    orgs: 1,
    workspaces: 10,
    projects: 10,
    users: 2_000,
    orgs_per_user: 1,
};

pub const LARGE: Shape = Shape {
    name: "large",
    orgs: 100,
    workspaces: 10,
    projects: 10,
    users: 100_000,
    orgs_per_user: 2,
};

/// Whether and when a binding expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    Never,
    /// A day ago: the binding no longer applies.
    Past,
    /// In 30 days: it still applies.
    Future,
}

/// One binding of one membership.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    pub index: u64,
    /// Index into [`ROLES`].
    pub role: usize,
    pub org: u64,
    /// Workspace index in the organization, for workspace and project bindings.
    pub workspace: Option<u64>,
    /// Project index in the workspace, for project bindings.
    pub project: Option<u64>,
    pub expiry: Expiry,
}

/// One check: may the member do `pair` at a project of their organization?
#[derive(Debug, Clone, Copy)]
pub struct CheckSpec {
    pub membership: u64,
    pub org: u64,
    pub workspace: u64,
    pub project: u64,
    /// Index into the catalog's pairs.
    pub pair: usize,
}

impl Shape {
    pub fn memberships(&self) -> u64 {
        self.users * self.orgs_per_user
    }

    pub fn bindings(&self) -> u64 {
        self.memberships() * BINDINGS_PER_MEMBERSHIP
    }

    pub fn all_workspaces(&self) -> u64 {
        self.orgs * self.workspaces
    }

    pub fn all_projects(&self) -> u64 {
        self.all_workspaces() * self.projects
    }

    /// A user's organizations must differ from one another.
    pub fn valid(&self) -> bool {
        (1..self.orgs_per_user).all(|k| !(k * ORG_STRIDE).is_multiple_of(self.orgs))
            && self.orgs_per_user <= self.orgs
    }

    pub fn user_of(&self, membership: u64) -> u64 {
        membership / self.orgs_per_user
    }

    pub fn org_of(&self, membership: u64) -> u64 {
        let (user, k) = (
            membership / self.orgs_per_user,
            membership % self.orgs_per_user,
        );
        (user + k * ORG_STRIDE) % self.orgs
    }

    pub fn org_id(&self, org: u64) -> Uuid {
        Kind::Org.id(org)
    }

    pub fn workspace_id(&self, org: u64, workspace: u64) -> Uuid {
        Kind::Workspace.id(org * self.workspaces + workspace)
    }

    pub fn project_id(&self, org: u64, workspace: u64, project: u64) -> Uuid {
        Kind::Project.id((org * self.workspaces + workspace) * self.projects + project)
    }

    pub fn user_id(&self, user: u64) -> Uuid {
        Kind::User.id(user)
    }

    /// Binding `j` (0..5) of membership `s`. `scale.rs` writes the same formulas in SQL
    /// (`binding_columns`): change both or neither.
    pub fn binding(&self, s: u64, j: u64) -> Binding {
        let h = s * MIX_FACTOR % MIX_MODULUS;
        let workspace = (j >= 1).then_some((h + 7 * j) % self.workspaces);
        let project = (j >= 3).then_some((h / self.workspaces + 3 * j) % self.projects);
        let role = if j == 0 {
            1 + (h / 100) % 3
        } else {
            (h / 100 + j) % 4
        };
        let expiry = match (j, (h / 1000) % 5) {
            (4, 0) => Expiry::Past,
            (2, 1) => Expiry::Future,
            _ => Expiry::Never,
        };
        Binding {
            index: s * BINDINGS_PER_MEMBERSHIP + j,
            role: role as usize,
            org: self.org_of(s),
            workspace,
            project,
            expiry,
        }
    }

    pub fn bindings_of(&self, s: u64) -> impl Iterator<Item = Binding> + '_ {
        (0..BINDINGS_PER_MEMBERSHIP).map(move |j| self.binding(s, j))
    }

    /// The node a binding is at.
    pub fn node_id(&self, b: &Binding) -> Uuid {
        match (b.workspace, b.project) {
            (Some(w), Some(p)) => self.project_id(b.org, w, p),
            (Some(w), None) => self.workspace_id(b.org, w),
            _ => self.org_id(b.org),
        }
    }

    /// A check for membership `s`: at a project under the workspace of its binding 1 (four in
    /// ten), at the project of its binding 3 (two in ten) or at any project of the
    /// organization; the permission is any pair of the catalog.
    pub fn check(&self, s: u64, pairs: usize, rng: &mut Rng) -> CheckSpec {
        let own = self.binding(s, 1).workspace.unwrap_or(0);
        let at = self.binding(s, 3);
        let (workspace, project) = match rng.below(10) {
            0..=3 => (own, rng.below(self.projects)),
            4..=5 => (at.workspace.unwrap_or(0), at.project.unwrap_or(0)),
            _ => (rng.below(self.workspaces), rng.below(self.projects)),
        };
        CheckSpec {
            membership: s,
            org: self.org_of(s),
            workspace,
            project,
            pair: usize::try_from(rng.below(pairs as u64)).unwrap_or(0),
        }
    }

    /// The check's path, root first.
    pub fn path(&self, c: &CheckSpec) -> [Uuid; 3] {
        [
            self.org_id(c.org),
            self.workspace_id(c.org, c.workspace),
            self.project_id(c.org, c.workspace, c.project),
        ]
    }

    /// The expected answer, from this file's formulas and `allows[role][pair]` alone: a
    /// binding on the check's path, not expired, whose role allows the pair.
    pub fn expected(&self, c: &CheckSpec, allows: &[Vec<bool>]) -> bool {
        self.bindings_of(c.membership)
            .any(|b| Self::allows(&b, c, allows))
    }

    /// Whether binding `b` allows check `c`: on its path, not expired, its role allowing the
    /// pair.
    pub fn allows(b: &Binding, c: &CheckSpec, allows: &[Vec<bool>]) -> bool {
        let on_path = match (b.workspace, b.project) {
            (None, _) => true,
            (Some(w), None) => w == c.workspace,
            (Some(w), Some(p)) => w == c.workspace && p == c.project,
        };
        on_path
            && b.expiry != Expiry::Past
            && allows
                .get(b.role)
                .and_then(|r| r.get(c.pair))
                .copied()
                .unwrap_or(false)
    }
}

/// Whether a built-in role's policy texts allow `type_name:action`, read from the text alone
/// (not through the engine's parser): `type:scope:action`, `*` matching anything. `None` when a
/// policy is not of the `*`-scoped form this oracle understands.
pub fn text_allows(policies: &[String], type_name: &str, action: &str) -> Option<bool> {
    let mut allowed = false;
    for p in policies {
        let parts: Vec<&str> = p.split(':').collect();
        let [t, scope, a] = parts[..] else {
            return None;
        };
        if scope != "*" {
            return None;
        }
        allowed |= (t == "*" || t == type_name) && (a == "*" || a == action);
    }
    Some(allowed)
}

/// Sample of `n` distinct memberships (all of them, shuffled, when there are no more).
pub fn sample(shape: &Shape, n: usize, rng: &mut Rng) -> Vec<u64> {
    let total = shape.memberships();
    let mut picked: Vec<u64> = if (n as u64) >= total {
        (0..total).collect()
    } else {
        let mut seen = std::collections::HashSet::new();
        let mut v = Vec::with_capacity(n);
        while v.len() < n {
            let s = rng.below(total);
            if seen.insert(s) {
                v.push(s);
            }
        }
        v
    };
    rng.shuffle(&mut picked);
    picked
}

/// splitmix64: small, fast and reproducible from a seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
}

/// Teams of the scale data sets (`benches/scale.rs`): every organization has
/// [`teams::PER_ORG`] teams, each with [`teams::BINDINGS`] bindings (one at a workspace, one at
/// a project), and every membership is in [`teams::PER_MEMBER`] of its organization's teams.
/// So a member's facts hold 5 bindings of their own and 6 through teams. `scale.rs` writes the
/// same formulas in SQL: change both or neither.
#[allow(dead_code)]
pub mod teams {
    use super::{Binding, Expiry, MIX_FACTOR, MIX_MODULUS, Shape};

    pub const PER_ORG: u64 = 20;
    pub const PER_MEMBER: u64 = 3;
    pub const BINDINGS: u64 = 2;

    /// The global index of the `k`-th team of membership `s` (in its organization).
    pub fn team_of(shape: &Shape, s: u64, k: u64) -> u64 {
        let h = s * MIX_FACTOR % MIX_MODULUS;
        shape.org_of(s) * PER_ORG + (h / 7 + 7 * k) % PER_ORG
    }

    /// Binding `b` of team `g` (a global index).
    pub fn binding(shape: &Shape, g: u64, b: u64) -> Binding {
        let t = g % PER_ORG;
        let workspace = if b == 0 {
            t % shape.workspaces
        } else {
            (t * 3) % shape.workspaces
        };
        Binding {
            index: g * BINDINGS + b,
            role: (1 + (t + b) % 3) as usize,
            org: g / PER_ORG,
            workspace: Some(workspace),
            project: (b == 1).then_some(t % shape.projects),
            expiry: Expiry::Never,
        }
    }

    /// The team bindings membership `s` holds, ordered by their ids.
    pub fn bindings_of(shape: &Shape, s: u64) -> Vec<Binding> {
        let mut teams: Vec<u64> = (0..PER_MEMBER).map(|k| team_of(shape, s, k)).collect();
        teams.sort_unstable();
        teams
            .into_iter()
            .flat_map(|g| (0..BINDINGS).map(move |b| binding(shape, g, b)))
            .collect()
    }

    /// Every team binding of the data set.
    pub fn count(shape: &Shape) -> u64 {
        shape.orgs * PER_ORG * BINDINGS
    }
}
