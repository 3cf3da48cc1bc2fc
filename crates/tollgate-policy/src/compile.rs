//! Compiling one plan version's terms into its Cedar policy slice, and the operator-wide
//! policies that are applied beside every slice.

use std::collections::{BTreeSet, HashSet};
use std::str::FromStr;

use cedar_policy::{Authorizer, Policy, PolicyId, PolicySet, ValidationMode};
use jiff::civil::Weekday;
use jiff::tz::TimeZone;

use crate::error::PolicyError;
use crate::schema::validator;
use crate::specialize::Specialized;
use crate::terms::{Grant, Hours, PlanTerms};

/// Operator-wide policies (e.g. a global `forbid` for embargoed regions), parsed and
/// validated against the schema once, then added to every compiled plan.
///
/// A policy's id is its `@id("…")` annotation when it has one, else `operator/<n>` (its
/// position in the file), so denial reasons name it.
#[derive(Debug, Clone)]
pub struct OperatorPolicies {
    text: String,
    policies: Vec<Policy>,
}

impl OperatorPolicies {
    /// No operator policies.
    pub fn none() -> Self {
        Self {
            text: String::new(),
            policies: Vec::new(),
        }
    }

    /// Parses and validates Cedar policy text (templates are not accepted).
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let op_err = |message: String| PolicyError::Operator { message };
        let parsed = PolicySet::from_str(text).map_err(|e| op_err(format!("{e}")))?;
        if parsed.templates().next().is_some() {
            return Err(op_err("templates are not supported".into()));
        }
        let mut seen = HashSet::new();
        let mut policies = Vec::new();
        // `PolicySet::from_str` names policies `policy0`, `policy1`, … in source order;
        // sorting by that number keeps `operator/<n>` stable.
        let mut raw: Vec<&Policy> = parsed.policies().collect();
        raw.sort_by_key(|p| source_index(p.id()));
        for (n, policy) in raw.into_iter().enumerate() {
            let id = match policy.annotation("id") {
                Some(id) => id.to_owned(),
                None => format!("operator/{n}"),
            };
            if !seen.insert(id.clone()) {
                return Err(PolicyError::DuplicateId { id });
            }
            policies.push(policy.new_id(PolicyId::new(id)));
        }
        let this = Self {
            text: text.to_owned(),
            policies,
        };
        let set = this.policy_set()?;
        let result = validator().validate(&set, ValidationMode::Strict);
        if !result.validation_passed() {
            let message = result
                .validation_errors()
                .map(|e| format!("{}: {e}", e.policy_id()))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(op_err(message));
        }
        Ok(this)
    }

    /// The source text as given.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The policy ids, in source order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.policies.iter().map(|p| p.id().as_ref())
    }

    fn policy_set(&self) -> Result<PolicySet, PolicyError> {
        PolicySet::from_policies(self.policies.iter().cloned()).map_err(|e| PolicyError::Operator {
            message: format!("{e}"),
        })
    }
}

fn source_index(id: &PolicyId) -> usize {
    let id: &str = id.as_ref();
    id.strip_prefix("policy")
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX)
}

/// One plan version's Cedar policy slice plus the operator policies: the whole policy set
/// a request under this plan is decided by.
#[derive(Debug, Clone)]
pub struct CompiledPlan {
    pub(crate) key: String,
    pub(crate) tz: TimeZone,
    text: String,
    /// `(policy id, clause)` of the slice's policies, in text order.
    clauses: Vec<(String, String)>,
    pub(crate) policies: PolicySet,
    /// Grant permit + one merged forbid + operator policies: same verdict, fewer policies.
    pub(crate) fast: PolicySet,
    /// The sets above folded per class of requests: what [`crate::decide`] evaluates.
    pub(crate) specialized: Specialized,
    pub(crate) authorizer: Authorizer,
}

impl CompiledPlan {
    /// `<plan_id>@<sheet_sha256>`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The time zone `weekday`, `minute` and `date` are computed in (UTC without window).
    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    /// The plan's own policies as Cedar text (operator policies not included), in a
    /// stable order; every policy carries its `@id`.
    pub fn cedar_text(&self) -> &str {
        &self.text
    }

    /// The policy ids of the slice and the term clause each comes from.
    pub fn clauses(&self) -> impl Iterator<Item = (&str, &str)> {
        self.clauses.iter().map(|(i, c)| (i.as_str(), c.as_str()))
    }

    /// The itemized set: the slice plus the operator policies, each policy's id equal to
    /// its `@id`. A denial's reasons are the forbids of it that the request satisfies
    /// ([`crate::decide`] evaluates each folded for the request, see `specialize`).
    pub fn policy_set(&self) -> &PolicySet {
        &self.policies
    }

    /// The verdict set: the `grant` permit, one `<key>/deny` forbid whose condition is
    /// the disjunction of the slice's forbids, and the operator policies. It decides
    /// exactly like [`CompiledPlan::policy_set`] (a property test checks it) with fewer
    /// policies for Cedar to evaluate. [`crate::decide`] evaluates it folded for the
    /// request (see `specialize`), with grant and merged forbid as one permit when no
    /// operator policy is a `permit`.
    pub fn verdict_set(&self) -> &PolicySet {
        &self.fast
    }
}

/// Compiles one plan version into its policy slice and validates it, together with the
/// operator policies, against the schema.
///
/// Policies (each with `@id("<key>/<name>")`):
/// - `grant` — one `permit` for every granted operation of every API;
/// - `subscription` — `forbid` unless the request's subscription is an active
///   subscription of this plan that the application belongs to;
/// - `scope` — `forbid` a granted operation unless the credential holds the scopes of a
///   grant that covers it;
/// - `window`, `blackout` — `forbid` outside the allowed local hours / on blackout dates;
/// - `region`, `purpose` — `forbid` unless the region / declared purpose is allowed;
/// - `consent/<categories>` — one `forbid` per distinct category set of operations that
///   need consent, unless the caller holds consent for all of them.
pub fn compile(
    terms: &PlanTerms,
    operator: &OperatorPolicies,
) -> Result<CompiledPlan, PolicyError> {
    check(terms)?;
    let key = &terms.key;
    let tz = match &terms.window {
        Some(w) => TimeZone::get(&w.tz).map_err(|e| {
            PolicyError::clause("window.tz", format!("unknown time zone {:?}: {e}", w.tz))
        })?,
        None => TimeZone::UTC,
    };

    let mut out = Emitter::default();
    let plan = format!("Plan::{}", lit(key));

    // Grants: one permit for all of them (the action is always `call`; the resource and
    // the operation say what is called).
    let pairs = |gs: &mut dyn Iterator<Item = &Grant>| -> Vec<(String, String)> {
        gs.flat_map(|g| g.operations.iter().map(|op| (g.api.clone(), op.clone())))
            .collect()
    };
    let all = pairs(&mut terms.grants.iter());
    out.policy(
        key,
        "grant",
        "grants",
        &format!(
            "permit (principal in {plan}, action == Action::\"call\", resource)\nwhen {{\n  {}\n}};",
            ops_match(&all)
        ),
    );

    out.forbid(
        key,
        "subscription",
        "subscription",
        None,
        Some(format!(
            "context.subscription in {plan} &&\n  principal in context.subscription &&\n  context.subscription.active"
        )),
    );

    // Scopes: forbid a scoped operation unless some grant covering the call has its
    // scopes satisfied. Grants without scopes that share an API with a scoped grant
    // join the `unless`, so an operation granted twice needs only one grant's scopes.
    let scoped: Vec<&Grant> = terms
        .grants
        .iter()
        .filter(|g| !g.scopes.is_empty())
        .collect();
    if !scoped.is_empty() {
        let when = ops_match(&pairs(&mut scoped.iter().copied()));
        let apis: BTreeSet<&str> = scoped.iter().map(|g| g.api.as_str()).collect();
        let unless: Vec<String> = terms
            .grants
            .iter()
            .filter(|g| apis.contains(g.api.as_str()))
            .map(|g| {
                if g.scopes.is_empty() {
                    format!("({})", grant_match(g))
                } else {
                    format!(
                        "({} && {})",
                        grant_match(g),
                        all_in("context.scopes", g.scopes.iter().map(String::as_str))
                    )
                }
            })
            .collect();
        out.forbid(
            key,
            "scope",
            "grants",
            Some(when),
            Some(unless.join(" ||\n  ")),
        );
    }

    if let Some(window) = &terms.window {
        let spans: Vec<String> = window.allow.iter().map(hours_expr).collect();
        out.forbid(
            key,
            "window",
            "window.allow",
            None,
            Some(spans.join(" ||\n  ")),
        );
        if !window.blackout.is_empty() {
            let dates: BTreeSet<String> = window.blackout.iter().map(|d| d.to_string()).collect();
            out.forbid(
                key,
                "blackout",
                "window.blackout",
                Some(one_of("context.date", dates.iter().map(|d| lit(d)))),
                None,
            );
        }
    }

    if let Some(regions) = &terms.regions {
        out.forbid(
            key,
            "region",
            "regions",
            None,
            Some(format!(
                "context has region && {}",
                one_of("context.region", sorted_lits(regions))
            )),
        );
    }

    if let Some(purposes) = &terms.purposes {
        out.forbid(
            key,
            "purpose",
            "purposes",
            None,
            Some(format!(
                "context has purpose && {}",
                one_of("context.purpose", sorted_lits(purposes))
            )),
        );
    }

    // Consent: group operations by their (sorted) category set, one forbid per group, in
    // order of first appearance, so the slice grows with distinct category sets rather
    // than with operations.
    /// Operations sharing one category set, and the first `sensitive[i]` naming it.
    struct Group<'a> {
        categories: BTreeSet<&'a str>,
        ops: Vec<(String, String)>,
        first: usize,
    }
    let mut groups: Vec<Group<'_>> = Vec::new();
    for (i, op) in terms.sensitive.iter().enumerate() {
        if !op.consent_required {
            continue;
        }
        let cats: BTreeSet<&str> = op.categories.iter().map(String::as_str).collect();
        let pair = (op.api.clone(), op.operation.clone());
        match groups.iter_mut().find(|g| g.categories == cats) {
            Some(g) => g.ops.push(pair),
            None => groups.push(Group {
                categories: cats,
                ops: vec![pair],
                first: i,
            }),
        }
    }
    for Group {
        categories: cats,
        ops,
        first,
    } in &groups
    {
        let name = format!(
            "consent/{}",
            cats.iter().copied().collect::<Vec<_>>().join("+")
        );
        let matches = ops_match(ops);
        out.forbid(
            key,
            &name,
            &format!("sensitive[{first}]"),
            Some(matches),
            Some(all_in("context.consent", cats.iter().copied())),
        );
    }

    // Parse, merge with the operator policies, validate.
    let mut policies = PolicySet::new();
    for (id, clause, src) in &out.policies {
        let policy = Policy::parse(Some(PolicyId::new(id)), src).map_err(|e| {
            PolicyError::clause(
                clause.clone(),
                format!("compiled policy {id} does not parse: {e}"),
            )
        })?;
        policies
            .add(policy)
            .map_err(|_| PolicyError::DuplicateId { id: id.clone() })?;
    }
    for policy in &operator.policies {
        let id = policy.id().to_string();
        policies
            .add(policy.clone())
            .map_err(|_| PolicyError::DuplicateId { id })?;
    }
    let result = validator().validate(&policies, ValidationMode::Strict);
    if let Some(e) = result.validation_errors().next() {
        let id = e.policy_id().to_string();
        let clause = out
            .policies
            .iter()
            .find(|(i, _, _)| *i == id)
            .map_or_else(|| "operator".to_owned(), |(_, c, _)| c.clone());
        return Err(PolicyError::clause(
            clause,
            format!("policy {id} does not validate: {e}"),
        ));
    }

    // The verdict set: the grant permit and one forbid that fires when any of the
    // slice's forbids would (their conditions OR-ed), plus the operator policies. Cedar's
    // cost grows with the number of policies, so an allowed call is decided by this
    // small set; a denied one's reasons are the itemized policies it satisfies.
    // When no operator policy is a `permit`, the grant and the merged forbid become one
    // permit, `grant unless { merged }`, with the grant's id (the reason of an allow):
    // what `decide` folds and evaluates.
    let grant_id = format!("{key}/grant");
    let grant = policies
        .policy(&PolicyId::new(&grant_id))
        .cloned()
        .ok_or_else(|| PolicyError::clause("grants", "grant policy missing"))?;
    // The subscription's condition goes last: it reads entity data, so it is the one part
    // the specialisation cannot fold, and `true || e` folds to `true` where `e || true`
    // must stay (Cedar would evaluate `e`). The slice's forbids cannot fail (the verdict
    // set relies on it and the property tests check it), so the order changes nothing.
    let subscription_id = format!("{key}/subscription");
    let (subscription, others): (Vec<_>, Vec<_>) =
        out.fires.iter().partition(|(id, _)| *id == subscription_id);
    let fires = others
        .into_iter()
        .chain(subscription)
        .map(|(_, fires)| fires.as_str())
        .collect::<Vec<_>>()
        .join(" ||\n  ");
    let deny_id = format!("{key}/deny");
    let merged = format!(
        "@id({})\nforbid (principal, action, resource)\nwhen {{\n  {fires}\n}};",
        lit(&deny_id),
    );
    let merged = Policy::parse(Some(PolicyId::new(&deny_id)), merged)
        .map_err(|e| PolicyError::clause("grants", format!("merged forbid does not parse: {e}")))?;
    let whole = format!(
        "@id({})\npermit (principal in {plan}, action == Action::\"call\", resource)\nwhen {{\n  {}\n}}\nunless {{\n  {fires}\n}};",
        lit(&grant_id),
        ops_match(&all),
    );
    let whole = Policy::parse(Some(PolicyId::new(&grant_id)), whole)
        .map_err(|e| PolicyError::clause("grants", format!("merged permit does not parse: {e}")))?;
    for merged_set in [vec![grant, merged.clone()], vec![whole.clone()]] {
        let mut set = PolicySet::new();
        for policy in merged_set
            .into_iter()
            .chain(operator.policies.iter().cloned())
        {
            let id = policy.id().to_string();
            set.add(policy)
                .map_err(|_| PolicyError::DuplicateId { id })?;
        }
        let result = validator().validate(&set, ValidationMode::Strict);
        if let Some(e) = result.validation_errors().next() {
            return Err(PolicyError::clause(
                "grants",
                format!("merged policy does not validate: {e}"),
            ));
        }
    }

    // Validated with their source locations (for error messages); evaluated without.
    let slice: Vec<Policy> = out
        .policies
        .iter()
        .filter_map(|(id, _, _)| policies.policy(&PolicyId::new(id)).cloned())
        .collect();
    let operator_policies = operator.policies.clone();
    let (policies, fast, specialized) =
        on_big_stack(move || evaluated_sets(slice, merged, whole, grant_id, operator_policies))?;

    let text = out
        .policies
        .iter()
        .map(|(_, _, src)| src.as_str())
        .collect::<Vec<_>>()
        .join("\n\n");
    Ok(CompiledPlan {
        key: key.clone(),
        tz,
        text: text + "\n",
        clauses: out.policies.into_iter().map(|(i, c, _)| (i, c)).collect(),
        policies,
        fast,
        specialized,
        authorizer: Authorizer::new(),
    })
}

/// The sets [`crate::decide`] evaluates, from the validated policies: the itemized and
/// verdict sets, and their specialisations ([`crate::specialize`]).
///
/// All are rebuilt from Cedar's JSON form, which has no source locations: Cedar's
/// evaluator copies an expression's source location (an `Arc` of the whole policy text)
/// into every intermediate value, so a policy without them evaluates faster (~1 µs of
/// ~23 µs per allowed call).
fn evaluated_sets(
    slice: Vec<Policy>,
    merged: Policy,
    whole: Policy,
    grant_id: String,
    operator: Vec<Policy>,
) -> Result<(PolicySet, PolicySet, Specialized), PolicyError> {
    let fail =
        |id: &PolicyId, e: String| PolicyError::clause("grants", format!("policy {id}: {e}"));
    let json = |policy: &Policy| {
        policy
            .to_json()
            .map_err(|e| fail(policy.id(), e.to_string()))
    };
    let rebuild = |id: &str, json: &serde_json::Value| {
        let id = PolicyId::new(id);
        Policy::from_json(Some(id.clone()), json.clone()).map_err(|e| fail(&id, e.to_string()))
    };
    let slice: Vec<(String, serde_json::Value)> = slice
        .iter()
        .map(|p| Ok((raw_id(p), json(p)?)))
        .collect::<Result<_, PolicyError>>()?;
    let operator: Vec<(Policy, serde_json::Value)> = operator
        .iter()
        .map(|p| {
            let j = json(p)?;
            Ok((rebuild(p.id().as_ref(), &j)?, j))
        })
        .collect::<Result<_, PolicyError>>()?;
    let deny = (raw_id(&merged), json(&merged)?);
    let grant_unless_denied = json(&whole)?;

    let set = |policies: Vec<Policy>| -> Result<PolicySet, PolicyError> {
        let mut set = PolicySet::new();
        for policy in policies
            .into_iter()
            .chain(operator.iter().map(|(p, _)| p.clone()))
        {
            let id = policy.id().to_string();
            set.add(policy)
                .map_err(|_| PolicyError::DuplicateId { id })?;
        }
        Ok(set)
    };
    let itemized = set(slice
        .iter()
        .map(|(id, j)| rebuild(id, j))
        .collect::<Result<_, _>>()?)?;
    let grant = slice
        .iter()
        .find(|(id, _)| *id == grant_id)
        .ok_or_else(|| PolicyError::clause("grants", "grant policy missing"))?;
    let verdict = set(vec![
        rebuild(&grant.0, &grant.1)?,
        rebuild(&deny.0, &deny.1)?,
    ])?;

    // Folded from the JSON forms. With no operator `permit`, a call is allowed exactly
    // when the grant-unless-denied permit is satisfied and no operator forbid is.
    let operator_permits = operator
        .iter()
        .any(|(p, _)| p.effect() == cedar_policy::Effect::Permit);
    let operator_json = operator.iter().map(|(p, j)| (raw_id(p), j.clone()));
    let verdict_json: Vec<(String, serde_json::Value)> = if operator_permits {
        vec![grant.clone(), deny]
    } else {
        vec![(grant_id, grant_unless_denied)]
    }
    .into_iter()
    .chain(operator_json.clone())
    .collect();
    let itemized_json = slice.into_iter().chain(operator_json).collect();
    let specialized = Specialized::new(verdict_json, itemized_json)
        .map_err(|e| PolicyError::clause("grants", e))?;
    Ok((itemized, verdict, specialized))
}

/// A policy's id as written (`PolicyId`'s `Display` escapes it).
fn raw_id(policy: &Policy) -> String {
    AsRef::<str>::as_ref(policy.id()).to_owned()
}

/// Runs `f` on a helper thread with a large stack (reserved, not committed). Cedar's
/// JSON conversions and the folding recurse once per nesting level (a grant of n
/// operations nests its `||` chains), with larger frames than Cedar's parser: a slice
/// that parsed converts.
fn on_big_stack<T: Send>(
    f: impl FnOnce() -> Result<T, PolicyError> + Send,
) -> Result<T, PolicyError> {
    const STACK: usize = 256 << 20;
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("policy-convert".into())
            .stack_size(STACK)
            .spawn_scoped(scope, f)
            .map_err(|e| PolicyError::clause("grants", format!("conversion thread: {e}")))?
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

#[derive(Default)]
struct Emitter {
    /// `(id, clause, source with @id)`.
    policies: Vec<(String, String, String)>,
    /// `(id, condition under which it fires)` of each forbid, for the merged verdict
    /// policy.
    fires: Vec<(String, String)>,
}

impl Emitter {
    fn policy(&mut self, key: &str, name: &str, clause: &str, body: &str) {
        let id = format!("{key}/{name}");
        let src = format!("@id({})\n{body}", lit(&id));
        self.policies.push((id, clause.to_owned(), src));
    }

    /// `forbid (principal, action, resource) when { W } unless { U };`
    fn forbid(
        &mut self,
        key: &str,
        name: &str,
        clause: &str,
        when: Option<String>,
        unless: Option<String>,
    ) {
        let block = |kw: &str, c: &str| {
            if c.contains('\n') || c.len() > 80 {
                format!("\n{kw} {{\n  {c}\n}}")
            } else {
                format!("\n{kw} {{ {c} }}")
            }
        };
        let mut body = String::from("forbid (principal, action, resource)");
        if let Some(w) = &when {
            body.push_str(&block("when", w));
        }
        if let Some(u) = &unless {
            body.push_str(&block("unless", u));
        }
        body.push(';');
        self.policy(key, name, clause, &body);
        let id = format!("{key}/{name}");
        let fires = match (when, unless) {
            (Some(w), Some(u)) => format!("(({w}) && !({u}))"),
            (Some(w), None) => format!("({w})"),
            (None, Some(u)) => format!("!({u})"),
            (None, None) => "true".to_owned(),
        };
        self.fires.push((id, fires));
    }
}

/// Rejects terms that would compile into something other than what they say.
fn check(terms: &PlanTerms) -> Result<(), PolicyError> {
    let nonempty = |clause: String, v: &str| {
        if v.is_empty() {
            Err(PolicyError::clause(clause, "must not be empty"))
        } else {
            Ok(())
        }
    };
    nonempty("key".into(), &terms.key)?;
    if terms.grants.is_empty() {
        return Err(PolicyError::clause(
            "grants",
            "a plan must grant at least one operation",
        ));
    }
    for (i, g) in terms.grants.iter().enumerate() {
        nonempty(format!("grants[{i}].api"), &g.api)?;
        if g.operations.is_empty() {
            return Err(PolicyError::clause(
                format!("grants[{i}].operations"),
                "must list at least one operation",
            ));
        }
        for (j, op) in g.operations.iter().enumerate() {
            nonempty(format!("grants[{i}].operations[{j}]"), op)?;
        }
        for (j, s) in g.scopes.iter().enumerate() {
            nonempty(format!("grants[{i}].scopes[{j}]"), s)?;
        }
    }
    if let Some(w) = &terms.window {
        if w.allow.is_empty() {
            return Err(PolicyError::clause(
                "window.allow",
                "must list at least one span (an empty window would deny every call)",
            ));
        }
        for (i, h) in w.allow.iter().enumerate() {
            let clause = format!("window.allow[{i}]");
            if h.days.is_empty() {
                return Err(PolicyError::clause(clause, "days must not be empty"));
            }
            if h.from_minute >= 1440 || h.to_minute > 1440 {
                return Err(PolicyError::clause(
                    clause,
                    format!(
                        "minutes out of range: from {} to {} (from < 1440, to ≤ 1440)",
                        h.from_minute, h.to_minute
                    ),
                ));
            }
            if h.from_minute == h.to_minute {
                return Err(PolicyError::clause(
                    clause,
                    "from and to are equal: the span is empty",
                ));
            }
        }
    }
    if let Some(regions) = &terms.regions {
        if regions.is_empty() {
            return Err(PolicyError::clause(
                "regions",
                "an empty list would deny every call; omit it to allow any region",
            ));
        }
        for (i, r) in regions.iter().enumerate() {
            nonempty(format!("regions[{i}]"), r)?;
        }
    }
    if let Some(purposes) = &terms.purposes {
        if purposes.is_empty() {
            return Err(PolicyError::clause(
                "purposes",
                "an empty list would deny every call; omit it to need no purpose",
            ));
        }
        for (i, p) in purposes.iter().enumerate() {
            nonempty(format!("purposes[{i}]"), p)?;
        }
    }
    for (i, s) in terms.sensitive.iter().enumerate() {
        nonempty(format!("sensitive[{i}].api"), &s.api)?;
        nonempty(format!("sensitive[{i}].operation"), &s.operation)?;
        if s.consent_required && s.categories.is_empty() {
            return Err(PolicyError::clause(
                format!("sensitive[{i}].categories"),
                "consent is required but no data category is named",
            ));
        }
        for (j, c) in s.categories.iter().enumerate() {
            nonempty(format!("sensitive[{i}].categories[{j}]"), c)?;
        }
    }
    Ok(())
}

/// A Cedar string literal, escaped the way Cedar itself prints ids; a test round-trips
/// arbitrary strings through Cedar's parser.
pub(crate) fn lit(s: &str) -> String {
    format!("\"{}\"", cedar_policy::EntityId::new(s).escaped())
}

// Membership is written as `==` chains and `contains` calls rather than set literals:
// Cedar builds a set literal anew on every evaluation (an allocation per policy per
// request), while `==` and `.contains()` on the context's sets allocate nothing.

fn sorted_lits(items: &[String]) -> impl Iterator<Item = String> {
    items
        .iter()
        .map(String::as_str)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(lit)
}

/// Longest `==` chain written; longer lists become one set literal. A chain nests one
/// level per element in Cedar's parser and evaluator, so bounding it bounds recursion
/// depth (a grant of thousands of operations must not overflow a worker's stack); the
/// set literal costs an allocation per evaluation, which only such large grants pay.
const MAX_CHAIN: usize = 16;

/// `expr == a`, `(expr == a || expr == b …)`, or `[a, b, …].contains(expr)` for long
/// lists, over already-written literals.
fn one_of(expr: &str, literals: impl IntoIterator<Item = String>) -> String {
    let lits: Vec<String> = literals.into_iter().collect();
    if lits.len() > MAX_CHAIN {
        return format!("[{}].contains({expr})", lits.join(", "));
    }
    let parts: Vec<String> = lits.into_iter().map(|l| format!("{expr} == {l}")).collect();
    if parts.len() == 1 {
        parts.into_iter().next().unwrap_or_default()
    } else {
        format!("({})", parts.join(" || "))
    }
}

/// `set.contains(a) && set.contains(b) …` (sorted, deduplicated).
fn all_in<'a>(set: &str, items: impl IntoIterator<Item = &'a str>) -> String {
    items
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|i| format!("{set}.contains({})", lit(i)))
        .collect::<Vec<_>>()
        .join(" && ")
}

/// `resource == Api::"a" && (context.operation == "op1" || …)`.
fn grant_match(g: &Grant) -> String {
    format!(
        "resource == Api::{} && {}",
        lit(&g.api),
        one_of("context.operation", sorted_lits(&g.operations))
    )
}

/// `(resource == Api::"a" && (context.operation == …)) || …` for `(api, operation)`
/// pairs: one clause per API, operations sorted.
fn ops_match(ops: &[(String, String)]) -> String {
    let mut apis: Vec<(&str, BTreeSet<&str>)> = Vec::new();
    for (api, op) in ops {
        match apis.iter_mut().find(|(a, _)| a == api) {
            Some((_, set)) => {
                set.insert(op);
            }
            None => apis.push((api, BTreeSet::from([op.as_str()]))),
        }
    }
    apis.iter()
        .map(|(api, ops)| {
            format!(
                "(resource == Api::{} && {})",
                lit(api),
                one_of("context.operation", ops.iter().map(|o| lit(o)))
            )
        })
        .collect::<Vec<_>>()
        .join(" ||\n  ")
}

/// ISO day number, 1 = Monday … 7 = Sunday (the `weekday` context attribute).
pub(crate) fn day_number(d: Weekday) -> i8 {
    d.to_monday_one_offset()
}

/// A condition on `context.weekday`: a range when the days are consecutive, else an
/// `==` chain; `None` for every day.
fn days(days: impl IntoIterator<Item = i8>) -> Option<String> {
    let set: BTreeSet<i8> = days.into_iter().collect();
    let (first, last) = (*set.first()?, *set.last()?);
    if set.len() == 7 {
        None
    } else if first == last {
        Some(format!("context.weekday == {first}"))
    } else if usize::try_from(last - first).ok() == Some(set.len() - 1) {
        Some(format!(
            "context.weekday >= {first} && context.weekday <= {last}"
        ))
    } else {
        Some(one_of(
            "context.weekday",
            set.iter().map(ToString::to_string),
        ))
    }
}

fn hours_expr(h: &Hours) -> String {
    let (from, to) = (h.from_minute, h.to_minute);
    let span = |day: Option<String>, from: u16, to: u16| {
        let mut parts: Vec<String> = day.into_iter().collect();
        if from > 0 {
            parts.push(format!("context.minute >= {from}"));
        }
        if to < 1440 {
            parts.push(format!("context.minute < {to}"));
        }
        if parts.is_empty() {
            "true".to_owned()
        } else {
            format!("({})", parts.join(" && "))
        }
    };
    let today = days(h.days.iter().map(|d| day_number(*d)));
    if from < to {
        span(today, from, to)
    } else if to == 0 {
        span(today, from, 1440)
    } else {
        // Overnight: from `from` on the listed days until `to` on the day after.
        let next = days(h.days.iter().map(|d| day_number(d.next())));
        format!("{} || {}", span(today, from, 1440), span(next, 0, to))
    }
}

#[cfg(test)]
mod tests {
    use super::lit;
    use cedar_policy::EntityUid;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn literals_round_trip(s in any::<String>()) {
            let parsed: EntityUid = format!("Plan::{}", lit(&s)).parse().unwrap();
            prop_assert_eq!(parsed.id().unescaped(), s.as_str());
        }
    }
}
