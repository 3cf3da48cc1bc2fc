//! Per-plan specialisation: a compiled plan's policy sets partially evaluated, at compile
//! time, for every class of requests that their atoms cannot tell apart.
//!
//! Most of a slice compares request facts with literals: `resource == Api::"a"`,
//! `context.operation == "x"`, `context.minute < 1080`, `context.date == "2026-12-25"`,
//! `context.region == "eu-west"`, `context.scopes.contains("s")`, … (see
//! [`crate::fold`]). Cedar evaluates every one of them on every request, at ~500
//! instructions per expression node. Here each fact an atom tests is a *dimension* whose
//! values fall into a few classes, within which every atom on that fact has the same
//! value: a string attribute's classes are the literals the policies compare it with,
//! "any other" and (when optional) "absent"; a `Long`'s are the intervals between the
//! literals' thresholds; a string set's are which of the literals it holds.
//!
//! A *chain* folds policies one dimension after the other, once per class (classes that
//! agree on every atom of a policy fold it once), and numbers the distinct results at
//! each step: a request walks the chain with its facts' classes (a binary search each)
//! and arrives at a folded set, which Cedar evaluates. The verdict chain folds the
//! verdict set along every dimension: an allowed call ends at the grant with only what
//! no literal decides (the subscription, in the entity data) left for Cedar, and a call
//! some folded `forbid` certainly denies ends at "denied" without evaluating anything.
//! A denial's reasons are the itemized policies it satisfies: each folds along its own
//! chain to "never", "always" or a residual that Cedar evaluates on its own (the forms
//! of one policy are few, where sets of them would multiply).
//!
//! The policies stay the single source of truth: folding is exact partial evaluation of
//! the validated policies ([`crate::fold`] lists why each rule keeps Cedar's semantics,
//! errors included), the Rust side only decides which literal a fact equals or which
//! threshold it passes, and the equivalence property test compares [`crate::decide`]
//! with the stock authorizer on the plan's Cedar text.

use std::collections::{BTreeSet, HashMap};

use cedar_policy::{Policy, PolicyId, PolicySet};
use serde_json::Value;

use crate::fold::{Atom, Attr, Attrs, Cmp, Type, always, atoms, fold_policy};

/// A request fact atoms test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Dim {
    /// The API (`resource`).
    Resource,
    Attr(Attr),
}

impl Atom<'_> {
    fn dim(&self) -> Dim {
        match self {
            Atom::Resource(_) => Dim::Resource,
            Atom::Has(a)
            | Atom::StrEq(a, _)
            | Atom::StrIn(a, _)
            | Atom::Cmp(a, _, _)
            | Atom::SetHas(a, _) => Dim::Attr(*a),
        }
    }
}

/// Most literals of a string-set attribute folded (2^n classes); a set attribute tested
/// against more stays for Cedar to evaluate.
const MAX_SET_LITERALS: usize = 6;

/// Largest folding work per plan, for the verdict chain and again for the itemized
/// policies (bytes of policy JSON folded); a plan beyond it folds fewer dimensions,
/// which decides the same, only slower.
const BUDGET: usize = 64 << 20;

/// Most distinct verdict sets per plan. An allowed call's set keeps what no literal
/// decides, and every set some folded `forbid` denies is the one "denied" end, so plans
/// stay far below this.
const MAX_VERDICT_ENDS: usize = 4_096;

/// Most distinct folded forms of one itemized policy (it folds to "never", "always" or
/// a residual per class; a residual is a policy set of its own).
const MAX_ITEM_ENDS: usize = 256;

/// How the values of one dimension fall into classes.
#[derive(Debug, Clone)]
enum Classes {
    /// Class `i < n` = the value `lits[i]`, `n` = any other value, `n + 1` = absent
    /// (optional attributes only).
    Strings { lits: Vec<String>, optional: bool },
    /// Class `i` = the values with exactly `i` of the bounds at or below them.
    Longs { bounds: Vec<i128> },
    /// Bit `i` of the class = the set holds `lits[i]`.
    Sets { lits: Vec<String> },
}

impl Classes {
    fn count(&self) -> usize {
        match self {
            Classes::Strings { lits, optional } => lits.len() + 1 + usize::from(*optional),
            Classes::Longs { bounds } => bounds.len() + 1,
            Classes::Sets { lits } => 1 << lits.len(),
        }
    }

    /// The value of `atom` (of this dimension) for every request of `class`; `None` when
    /// Cedar has to evaluate it (it reads an absent attribute, and fails).
    fn eval(&self, class: usize, atom: &Atom<'_>) -> Option<bool> {
        match self {
            Classes::Strings { lits, optional } => {
                let absent = *optional && class == lits.len() + 1;
                let value = lits.get(class).map(String::as_str);
                match atom {
                    Atom::Has(_) => Some(!absent),
                    _ if absent => None,
                    Atom::Resource(s) | Atom::StrEq(_, s) => Some(value == Some(*s)),
                    Atom::StrIn(_, set) => Some(value.is_some_and(|v| set.contains(&v))),
                    Atom::Cmp(..) | Atom::SetHas(..) => None,
                }
            }
            Classes::Longs { bounds } => {
                // The class's least value: every value of the class compares alike.
                let least = match class {
                    0 => bounds.first().map_or(0, |b| b - 1),
                    i => bounds[i - 1],
                };
                match atom {
                    Atom::Has(_) => Some(true),
                    Atom::Cmp(_, cmp, n) => Some(cmp.eval(least, i128::from(*n))),
                    _ => None,
                }
            }
            Classes::Sets { lits } => match atom {
                Atom::Has(_) => Some(true),
                Atom::SetHas(_, s) => {
                    let i = lits.binary_search_by(|l| l.as_str().cmp(s)).ok()?;
                    Some(class & (1 << i) != 0)
                }
                _ => None,
            },
        }
    }
}

fn string_class(lits: &[String], value: Option<&str>) -> usize {
    match value {
        Some(v) => lits
            .binary_search_by(|l| l.as_str().cmp(v))
            .unwrap_or(lits.len()),
        None => lits.len() + 1,
    }
}

/// The facts of one request the dimensions read.
pub(crate) trait Facts {
    fn api(&self) -> &str;
    /// A string attribute's value (`None` when absent).
    fn string(&self, attr: Attr) -> Option<&str>;
    fn long(&self, attr: Attr) -> i64;
    fn strings(&self, attr: Attr) -> &[String];
}

/// A folded set and the context attributes it reads.
#[derive(Debug, Clone)]
pub(crate) struct Folded {
    pub(crate) set: PolicySet,
    pub(crate) attrs: Attrs,
}

/// What one itemized policy is for the requests of a class.
#[derive(Debug, Clone)]
pub(crate) enum Item {
    /// It can neither be satisfied nor fail.
    Gone,
    /// Every request of the class satisfies it (and it cannot fail).
    Always { id: String, permit: bool },
    /// Cedar evaluates it: `set` holds it alone.
    Residual { folded: Box<Folded>, permit: bool },
}

/// Policies as `(id, EST JSON)`.
type Policies = Vec<(String, Value)>;

/// One chain: the dimensions it folds, in order, the step tables and what it ends at.
#[derive(Debug, Clone)]
struct Chain<E> {
    dims: Vec<usize>,
    /// `steps[k][state * classes + class]`: the state after folding `dims[k]`.
    steps: Vec<Vec<u32>>,
    ends: Vec<E>,
}

impl<E> Chain<E> {
    /// The same chain ending at `f` of each end.
    fn map<F>(self, mut f: impl FnMut(E) -> Result<F, String>) -> Result<Chain<F>, String> {
        Ok(Chain {
            dims: self.dims,
            steps: self.steps,
            ends: self
                .ends
                .into_iter()
                .map(&mut f)
                .collect::<Result<_, _>>()?,
        })
    }
}

/// The most dimensions a plan can have: the API and every attribute.
const MAX_DIMS: usize = 1 + Attr::ALL.len();

/// The class of a request in each dimension of a plan.
pub(crate) struct Coords([usize; MAX_DIMS]);

/// A plan's dimensions and chains.
#[derive(Clone)]
pub(crate) struct Specialized {
    dims: Vec<(Dim, Classes)>,
    /// The verdict set; `None`: certainly denied.
    verdict: Chain<Option<Folded>>,
    /// Each itemized policy on its own: a denial's reasons are the `forbid`s satisfied.
    items: Vec<Chain<Item>>,
}

impl std::fmt::Debug for Specialized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Specialized")
            .field(
                "dims",
                &self.dims.iter().map(|(d, _)| d).collect::<Vec<_>>(),
            )
            .field("verdict_ends", &self.verdict.ends.len())
            .field(
                "item_ends",
                &self.items.iter().map(|c| c.ends.len()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Specialized {
    /// Builds the dimensions of the policies of `verdict` and `itemized` (the unfolded
    /// sets), the verdict chain and one chain per itemized policy.
    pub(crate) fn new(verdict: Policies, itemized: Policies) -> Result<Self, String> {
        let dims = dimensions(verdict.iter().chain(&itemized).map(|(_, p)| p));
        let mut folder = Folder::new(&dims);
        // Each chain folds the dimensions its policies test, in the order of `dims`.
        let order = |folder: &mut Folder<'_>, policies: &[(String, Value)]| {
            let mut tested = 0u32;
            for policy in policies {
                tested |= folder.dims_of(policy)?;
            }
            Ok::<_, String>(
                (0..dims.len())
                    .filter(|d| tested & (1 << d) != 0)
                    .collect::<Vec<_>>(),
            )
        };
        let verdict_order = order(&mut folder, &verdict)?;
        let verdict = folder
            .chain(&verdict_order, &verdict, true, MAX_VERDICT_ENDS)?
            .map(|state| state.map(|ps| folder.end(&ps)).transpose())?;
        // The itemized policies get a budget of their own: a verdict chain that spent its
        // own still leaves them folded.
        folder.budget = BUDGET;
        let items = itemized
            .into_iter()
            .map(|policy| {
                let order = order(&mut folder, std::slice::from_ref(&policy))?;
                folder
                    .chain(&order, &[policy], false, MAX_ITEM_ENDS)?
                    .map(|state| folder.item(state.as_deref().unwrap_or_default()))
            })
            .collect::<Result<_, String>>()?;
        Ok(Self {
            dims,
            verdict,
            items,
        })
    }

    fn class(&self, dim: usize, facts: &impl Facts) -> usize {
        let (dim, classes) = &self.dims[dim];
        match (dim, classes) {
            (Dim::Resource, Classes::Strings { lits, .. }) => string_class(lits, Some(facts.api())),
            (Dim::Attr(a), Classes::Strings { lits, .. }) => string_class(lits, facts.string(*a)),
            (Dim::Attr(a), Classes::Longs { bounds }) => {
                let v = i128::from(facts.long(*a));
                bounds.partition_point(|b| *b <= v)
            }
            (Dim::Attr(a), Classes::Sets { lits }) => {
                facts.strings(*a).iter().fold(0, |class, item| {
                    match lits.binary_search_by(|l| l.as_str().cmp(item)) {
                        Ok(i) => class | 1 << i,
                        Err(_) => class,
                    }
                })
            }
            // Not built (see `dimensions`).
            (Dim::Resource, _) => 0,
        }
    }

    /// The classes of a request.
    pub(crate) fn coords(&self, facts: &impl Facts) -> Coords {
        let mut coords = [0; MAX_DIMS];
        for (d, c) in coords.iter_mut().enumerate().take(self.dims.len()) {
            *c = self.class(d, facts);
        }
        Coords(coords)
    }

    fn walk<'s, E>(&self, chain: &'s Chain<E>, coords: &Coords) -> &'s E {
        let mut state = 0usize;
        for (k, &dim) in chain.dims.iter().enumerate() {
            let count = self.dims[dim].1.count();
            state = chain.steps[k][state * count + coords.0[dim]] as usize;
        }
        &chain.ends[state]
    }

    /// The folded verdict set of a request; `None` when it is certainly denied.
    pub(crate) fn verdict(&self, coords: &Coords) -> Option<&Folded> {
        self.walk(&self.verdict, coords).as_ref()
    }

    /// What each itemized policy is for a request (the reasons of a denial).
    pub(crate) fn items<'s>(&'s self, coords: &'s Coords) -> impl Iterator<Item = &'s Item> + 's {
        self.items.iter().map(move |chain| self.walk(chain, coords))
    }

    /// The number of distinct verdict ends and the most ends of an itemized policy
    /// (for tests).
    #[cfg(test)]
    pub(crate) fn ends(&self) -> (usize, usize) {
        let items = self.items.iter().map(|c| c.ends.len()).max().unwrap_or(0);
        (self.verdict.ends.len(), items)
    }
}

/// The dimensions the atoms of `policies` test, with their classes, ordered by
/// [`Dim`]: the API and the operation first (they split a slice the most).
fn dimensions<'a>(policies: impl Iterator<Item = &'a Value>) -> Vec<(Dim, Classes)> {
    #[derive(Default)]
    struct Seen {
        lits: BTreeSet<String>,
        bounds: BTreeSet<i128>,
    }
    let mut seen: std::collections::BTreeMap<Dim, Seen> = std::collections::BTreeMap::new();
    for p in policies {
        atoms(p, &mut |a| {
            let s = seen.entry(a.dim()).or_default();
            match a {
                Atom::Resource(v) | Atom::StrEq(_, v) | Atom::SetHas(_, v) => {
                    s.lits.insert(v.to_owned());
                }
                Atom::StrIn(_, set) => s.lits.extend(set.into_iter().map(str::to_owned)),
                Atom::Cmp(_, cmp, n) => {
                    let n = i128::from(n);
                    match cmp {
                        Cmp::Lt | Cmp::Ge => s.bounds.insert(n),
                        Cmp::Le | Cmp::Gt => s.bounds.insert(n + 1),
                        Cmp::Eq => s.bounds.insert(n) | s.bounds.insert(n + 1),
                    };
                }
                Atom::Has(_) => {}
            }
        });
    }
    seen.into_iter()
        .filter_map(|(dim, s)| {
            let ty = match dim {
                Dim::Resource => Type::String,
                Dim::Attr(a) => a.ty(),
            };
            let classes = match ty {
                Type::String | Type::OptString => Classes::Strings {
                    lits: s.lits.into_iter().collect(),
                    optional: ty == Type::OptString,
                },
                Type::Long if !s.bounds.is_empty() => Classes::Longs {
                    bounds: s.bounds.into_iter().collect(),
                },
                Type::Strings if !s.lits.is_empty() && s.lits.len() <= MAX_SET_LITERALS => {
                    Classes::Sets {
                        lits: s.lits.into_iter().collect(),
                    }
                }
                // Only `has` (always true), an entity, or too many literals: Cedar
                // evaluates these atoms.
                _ => return None,
            };
            Some((dim, classes))
        })
        .collect()
}

/// The group of each class of `dim` for `policy`: classes in one group give each atom of
/// the policy on `dim` the same value, so they fold it alike. For a string dimension the
/// classes are grouped by the atoms their literal satisfies (a grant of n operations
/// then folds once per grant, not n times); other dimensions have few classes, each its
/// own group.
fn groups(policy: &Value, (dim, classes): &(Dim, Classes)) -> Vec<u32> {
    let Classes::Strings { lits, optional } = classes else {
        return (0..classes.count()).map(|c| c as u32).collect();
    };
    // The atoms of `policy` on `dim` each literal satisfies; no atom counts `has`, which
    // only absence (a group of its own) falsifies.
    let mut satisfied: Vec<Vec<u32>> = vec![Vec::new(); lits.len()];
    let mut n = 0u32;
    atoms(policy, &mut |a| {
        if a.dim() != *dim {
            return;
        }
        let mut mark = |s: &str| {
            if let Ok(k) = lits.binary_search_by(|l| l.as_str().cmp(s)) {
                satisfied[k].push(n);
            }
        };
        match a {
            Atom::Resource(s) | Atom::StrEq(_, s) => mark(s),
            Atom::StrIn(_, set) => set.into_iter().for_each(mark),
            _ => {}
        }
        n += 1;
    });
    let mut ids: HashMap<Vec<u32>, u32> = HashMap::new();
    // Each literal, then "any other value" (satisfies none).
    let mut groups: Vec<u32> = satisfied
        .into_iter()
        .chain(std::iter::once(Vec::new()))
        .map(|atoms| {
            let next = ids.len() as u32;
            *ids.entry(atoms).or_insert(next)
        })
        .collect();
    if *optional {
        groups.push(ids.len() as u32);
    }
    groups
}

/// One distinct (folded) policy.
struct Interned {
    id: String,
    json: Value,
    /// Bit `i`: the policy has an atom of `dims[i]`.
    dims: u32,
    permit: bool,
    /// Every request satisfies it (a policy on any principal, action and resource,
    /// without clauses).
    always: bool,
    /// Its JSON text's length: the folding work it costs.
    size: usize,
    /// Built when an end first holds it.
    policy: Option<Policy>,
}

/// The distinct policies met while folding, each folded at most once per class.
struct Folder<'d> {
    dims: &'d [(Dim, Classes)],
    policies: Vec<Interned>,
    index: HashMap<String, u32>,
    /// `(policy, dim)` → the group of each class: classes that give every atom of the
    /// policy on that dimension the same value fold it alike.
    groups: HashMap<(u32, usize), Vec<u32>>,
    /// `(policy, dim, group)` → the folded policy (`None`: it can no longer fire).
    folded: HashMap<(u32, usize, u32), Option<u32>>,
    /// Folding work left (bytes of JSON).
    budget: usize,
}

/// A chain state: the policies of a folded set, or `None` for "certainly denied".
type State = Option<Vec<u32>>;

impl<'d> Folder<'d> {
    fn new(dims: &'d [(Dim, Classes)]) -> Self {
        Self {
            dims,
            policies: Vec::new(),
            index: HashMap::new(),
            groups: HashMap::new(),
            folded: HashMap::new(),
            budget: BUDGET,
        }
    }

    /// The index of policy `id` with body `json`.
    fn intern(&mut self, id: &str, json: Value) -> Result<u32, String> {
        let key = format!(
            "{id}\n{}",
            serde_json::to_string(&json).map_err(|e| e.to_string())?
        );
        if let Some(&i) = self.index.get(&key) {
            return Ok(i);
        }
        let mut dims = 0u32;
        atoms(&json, &mut |a| {
            if let Some(i) = self.dims.iter().position(|(d, _)| *d == a.dim()) {
                dims |= 1 << i;
            }
        });
        let effect = |e: &str| json["effect"] == e;
        let interned = Interned {
            id: id.to_owned(),
            dims,
            permit: effect("permit"),
            always: always(&json),
            size: key.len(),
            json,
            policy: None,
        };
        self.policies.push(interned);
        let i = u32::try_from(self.policies.len() - 1).map_err(|e| e.to_string())?;
        self.index.insert(key, i);
        Ok(i)
    }

    /// Policy `p` folded with the atoms of `dims[dim]` decided for `class`.
    fn fold(&mut self, p: u32, dim: usize, class: usize) -> Result<Option<u32>, String> {
        let policy = &self.policies[p as usize];
        if policy.dims & (1 << dim) == 0 {
            return Ok(Some(p));
        }
        let group = match self.groups.get(&(p, dim)) {
            Some(groups) => groups[class],
            None => {
                let groups = groups(&policy.json, &self.dims[dim]);
                let group = groups[class];
                self.groups.insert((p, dim), groups);
                group
            }
        };
        if let Some(&f) = self.folded.get(&(p, dim, group)) {
            return Ok(f);
        }
        let policy = &self.policies[p as usize];
        self.budget = self.budget.saturating_sub(policy.size);
        let (d, classes) = &self.dims[dim];
        let known = |a: &Atom<'_>| {
            if a.dim() == *d {
                classes.eval(class, a)
            } else {
                None
            }
        };
        let folded = match fold_policy(&policy.json, &known) {
            Some(json) => {
                let id = policy.id.clone();
                Some(self.intern(&id, json)?)
            }
            None => None,
        };
        self.folded.insert((p, dim, group), folded);
        Ok(folded)
    }

    /// `state` folded for `class` of `dims[dim]`; "certainly denied" (only when
    /// `verdict`) when no `permit` is left or a `forbid` every request satisfies is.
    fn fold_state(
        &mut self,
        state: &State,
        dim: usize,
        class: usize,
        verdict: bool,
    ) -> Result<State, String> {
        let Some(policies) = state else {
            return Ok(None);
        };
        let mut folded = Vec::with_capacity(policies.len());
        for &p in policies {
            if let Some(f) = self.fold(p, dim, class)? {
                folded.push(f);
            }
        }
        let denied = !folded.iter().any(|&p| self.policies[p as usize].permit)
            || folded.iter().any(|&p| {
                let p = &self.policies[p as usize];
                !p.permit && p.always
            });
        Ok(if verdict && denied {
            None
        } else {
            Some(folded)
        })
    }

    /// Folds `initial` along `order` (indices into `dims`) while the work fits the
    /// budget and the states stay at most `max_states`.
    fn chain(
        &mut self,
        order: &[usize],
        initial: &[(String, Value)],
        verdict: bool,
        max_states: usize,
    ) -> Result<Chain<State>, String> {
        let first = initial
            .iter()
            .map(|(id, json)| self.intern(id, json.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut states: Vec<State> = vec![Some(first)];
        let mut dims = Vec::new();
        let mut steps = Vec::new();
        for &d in order {
            let count = self.dims[d].1.count();
            let mut next: Vec<State> = Vec::new();
            let mut index: HashMap<State, u32> = HashMap::new();
            let mut step = Vec::with_capacity(states.len() * count);
            'stage: for state in &states {
                for class in 0..count {
                    if self.budget == 0 {
                        break 'stage;
                    }
                    let folded = self.fold_state(state, d, class, verdict)?;
                    let i = match index.get(&folded) {
                        Some(&i) => i,
                        None => {
                            let i = u32::try_from(next.len()).map_err(|e| e.to_string())?;
                            index.insert(folded.clone(), i);
                            next.push(folded);
                            i
                        }
                    };
                    step.push(i);
                }
            }
            if self.budget == 0 || next.len() > max_states {
                break;
            }
            states = next;
            dims.push(d);
            steps.push(step);
        }
        Ok(Chain {
            dims,
            steps,
            ends: states,
        })
    }

    /// The dimensions `policy`'s atoms test (a bit per index into `dims`).
    fn dims_of(&mut self, (id, json): &(String, Value)) -> Result<u32, String> {
        let i = self.intern(id, json.clone())?;
        Ok(self.policies[i as usize].dims)
    }

    /// What the folded policies of an itemized chain's end (none or one) are.
    fn item(&mut self, policies: &[u32]) -> Result<Item, String> {
        let Some(&p) = policies.first() else {
            return Ok(Item::Gone);
        };
        let interned = &self.policies[p as usize];
        let permit = interned.permit;
        if interned.always {
            return Ok(Item::Always {
                id: interned.id.clone(),
                permit,
            });
        }
        Ok(Item::Residual {
            folded: Box::new(self.end(&[p])?),
            permit,
        })
    }

    fn end(&mut self, policies: &[u32]) -> Result<Folded, String> {
        let mut set = PolicySet::new();
        let mut attrs = Attrs::NONE;
        for &p in policies {
            let p = &mut self.policies[p as usize];
            attrs.add_read_by(&p.json);
            let policy = match &p.policy {
                Some(policy) => policy.clone(),
                None => {
                    let policy = Policy::from_json(Some(PolicyId::new(&p.id)), p.json.clone())
                        .map_err(|e| format!("folded policy {}: {e}", p.id))?;
                    p.policy = Some(policy.clone());
                    policy
                }
            };
            set.add(policy).map_err(|e| e.to_string())?;
        }
        Ok(Folded { set, attrs })
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::{Weekday, date};

    use super::{Facts, Item};
    use crate::fold::{Attr, Attrs};
    use crate::{Grant, Hours, OperatorPolicies, PlanTerms, SensitiveOp, Window, compile};

    struct Call {
        api: &'static str,
        op: &'static str,
        weekday: i64,
        minute: i64,
        date: &'static str,
        region: Option<&'static str>,
        purpose: Option<&'static str>,
        scopes: Vec<String>,
        consent: Vec<String>,
    }

    impl Facts for Call {
        fn api(&self) -> &str {
            self.api
        }
        fn string(&self, attr: Attr) -> Option<&str> {
            match attr {
                Attr::Operation => Some(self.op),
                Attr::Date => Some(self.date),
                Attr::Region => self.region,
                Attr::Purpose => self.purpose,
                Attr::AuthMethod => Some("api_key"),
                _ => None,
            }
        }
        fn long(&self, attr: Attr) -> i64 {
            match attr {
                Attr::Weekday => self.weekday,
                _ => self.minute,
            }
        }
        fn strings(&self, attr: Attr) -> &[String] {
            match attr {
                Attr::Scopes => &self.scopes,
                Attr::Consent => &self.consent,
                _ => &[],
            }
        }
    }

    /// The bench's plan: three grants over two APIs, business hours and Saturday
    /// mornings, blackout dates, regions, two consent groups, purposes.
    pub(crate) fn rich_terms(ops: usize) -> PlanTerms {
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        PlanTerms {
            key: "rich@1".into(),
            grants: vec![
                Grant {
                    api: "a".into(),
                    operations: (0..ops).map(|k| format!("read{k}")).collect(),
                    scopes: s(&["data:read"]),
                },
                Grant {
                    api: "a".into(),
                    operations: s(&["write0", "write1", "write2"]),
                    scopes: s(&["data:read", "data:write"]),
                },
                Grant {
                    api: "b".into(),
                    operations: s(&["lookup0", "lookup1", "lookup2"]),
                    scopes: vec![],
                },
            ],
            window: Some(Window {
                tz: "Europe/Paris".into(),
                allow: vec![
                    Hours {
                        days: vec![
                            Weekday::Monday,
                            Weekday::Tuesday,
                            Weekday::Wednesday,
                            Weekday::Thursday,
                            Weekday::Friday,
                        ],
                        from_minute: 420,
                        to_minute: 1200,
                    },
                    Hours {
                        days: vec![Weekday::Saturday],
                        from_minute: 540,
                        to_minute: 780,
                    },
                ],
                blackout: vec![date(2026, 12, 25), date(2027, 1, 1), date(2027, 5, 1)],
            }),
            regions: Some(s(&["eu-west", "eu-central", "us-east"])),
            sensitive: vec![
                SensitiveOp {
                    api: "a".into(),
                    operation: "read1".into(),
                    categories: s(&["contact"]),
                    consent_required: true,
                },
                SensitiveOp {
                    api: "a".into(),
                    operation: "read2".into(),
                    categories: s(&["contact", "health"]),
                    consent_required: true,
                },
            ],
            purposes: Some(s(&["service", "research"])),
        }
    }

    pub(crate) const OPERATOR: &str = r#"@id("operator/embargo")
forbid (principal, action, resource)
when { context has region && ["embargo-a", "embargo-b", "embargo-c"].contains(context.region) };
@id("operator/no-anonymous")
forbid (principal, action, resource)
when { context.auth_method == "none" };"#;

    #[test]
    fn an_allowed_call_leaves_only_the_entity_data_to_cedar() {
        // Also for a grant of hundreds of operations: classes that agree on a policy's
        // atoms fold it once, so the work grows with the grants, not the operations.
        for ops in [6, 400] {
            let plan = compile(
                &rich_terms(ops),
                &OperatorPolicies::parse(OPERATOR).unwrap(),
            )
            .unwrap();
            let (verdict, item) = plan.specialized.ends();
            assert!(verdict == 2 && item <= 2, "{:?}", plan.specialized);
            // Wednesday 10:00, every clause satisfied.
            let call = Call {
                api: "a",
                op: "read1",
                weekday: 3,
                minute: 600,
                date: "2026-11-04",
                region: Some("eu-west"),
                purpose: Some("service"),
                scopes: vec!["data:read".into()],
                consent: vec!["contact".into()],
            };
            let coords = plan.specialized.coords(&call);
            let folded = plan.specialized.verdict(&coords).unwrap();
            let mut only_subscription = Attrs::NONE;
            only_subscription.add_read_by(&serde_json::json!(
                { ".": { "left": { "Var": "context" }, "attr": "subscription" } }
            ));
            assert_eq!(folded.attrs, only_subscription);
            assert_eq!(folded.set.policies().count(), 1);
            // 23:30: outside the window, certainly denied without Cedar; the reasons are
            // the window (folded) and whatever the subscription (Cedar) says.
            let late = Call {
                minute: 1410,
                ..call
            };
            let coords = plan.specialized.coords(&late);
            assert!(plan.specialized.verdict(&coords).is_none());
            let items: Vec<String> = plan
                .specialized
                .items(&coords)
                .filter_map(|item| match item {
                    Item::Gone => None,
                    Item::Always { id, .. } => Some(format!("always {id}")),
                    Item::Residual { folded, .. } => Some(format!(
                        "residual {}",
                        folded.set.policies().next().unwrap().id()
                    )),
                })
                .collect();
            assert_eq!(
                items,
                [
                    "residual rich@1/grant",
                    "residual rich@1/subscription",
                    "always rich@1/window"
                ]
            );
        }
    }
}
