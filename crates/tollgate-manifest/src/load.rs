//! Reading manifests: files and folders, the three formats, referenced OpenAPI documents
//! and term sheets, and every check that needs only the manifest itself. The only IO is
//! reading the files named by the caller and the OpenAPI and term sheet files those name.

use crate::error::ManifestError;
use crate::spec::{
    ApiSpec, AppSpec, ManifestFile, OpenApi, OrgSpec, PlanSpec, SubscriptionSpec, TermsSpec,
    VerificationKey, yaml_to_json,
};
use base64::Engine as _;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use tollgate_core::apikey::KeyMode;
use tollgate_core::locate::{FieldPath, Format, Seg, line_of_offset, locate};
use tollgate_core::model::{
    ACCEPTANCE_V1, Acceptance, ApiStatus, CreateApi, CreateApp, CreateOrg, CreatePlan, PlanApi,
    SubscriptionState,
};
use tollgate_core::{ApiId, FieldErrors, OrgId};
use tollgate_terms::locate::from_serde;

/// A whole manifest: every entity of every file read, in reading order.
///
/// Equality compares the entities only, not where they came from, so a YAML file and
/// its TOML twin give equal manifests.
#[derive(Debug, Clone, Default)]
pub struct Manifest {
    pub orgs: Vec<OrgSpec>,
    pub apis: Vec<ApiSpec>,
    /// Term sheets; after loading each has its `document` (validated) and no `file`.
    pub terms: Vec<TermsSpec>,
    pub plans: Vec<PlanSpec>,
    pub apps: Vec<AppSpec>,
    /// Subscriptions with their signed acceptance records.
    pub subscriptions: Vec<SubscriptionSpec>,
    /// Public keys of the acceptance records' signers.
    pub verification_keys: Vec<VerificationKey>,
    origins: Origins,
}

impl PartialEq for Manifest {
    fn eq(&self, other: &Self) -> bool {
        self.orgs == other.orgs
            && self.apis == other.apis
            && self.terms == other.terms
            && self.plans == other.plans
            && self.apps == other.apps
            && self.subscriptions == other.subscriptions
            && self.verification_keys == other.verification_keys
    }
}

/// Which list an entity is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum List {
    Orgs,
    Apis,
    Terms,
    Plans,
    Apps,
    Subscriptions,
    VerificationKeys,
}

impl List {
    fn key(self) -> &'static str {
        match self {
            List::Orgs => "orgs",
            List::Apis => "apis",
            List::Terms => "terms",
            List::Plans => "plans",
            List::Apps => "apps",
            List::Subscriptions => "subscriptions",
            List::VerificationKeys => "verification_keys",
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Origins {
    orgs: Vec<Origin>,
    apis: Vec<Origin>,
    terms: Vec<Origin>,
    plans: Vec<Origin>,
    apps: Vec<Origin>,
    subscriptions: Vec<Origin>,
    verification_keys: Vec<Origin>,
    sources: BTreeMap<PathBuf, Source>,
}

#[derive(Debug, Clone)]
struct Origin {
    file: PathBuf,
    /// Position in its file's list.
    index: usize,
    /// For a term sheet read from a file: `file:line` of the sheet's `version`.
    sheet_version_at: Option<String>,
}

#[derive(Debug, Clone)]
struct Source {
    format: Format,
    text: String,
}

impl Manifest {
    /// An error about entity `i` of `list`, at `field` inside it (a JSON pointer such as
    /// `/base_path`, or `""` for the entity itself), with the line found in its file.
    pub(crate) fn error(
        &self,
        list: List,
        i: usize,
        pointer: &str,
        message: impl Into<String>,
    ) -> ManifestError {
        let origins = match list {
            List::Orgs => &self.origins.orgs,
            List::Apis => &self.origins.apis,
            List::Terms => &self.origins.terms,
            List::Plans => &self.origins.plans,
            List::Apps => &self.origins.apps,
            List::Subscriptions => &self.origins.subscriptions,
            List::VerificationKeys => &self.origins.verification_keys,
        };
        let Some(o) = origins.get(i) else {
            // Built in code rather than read from a file.
            let field = FieldPath::entity(list.key(), i).pointer(pointer);
            return ManifestError {
                file: PathBuf::new(),
                line: None,
                field: field.to_string(),
                message: message.into(),
            };
        };
        let field = FieldPath::entity(list.key(), o.index).pointer(pointer);
        let line = self
            .origins
            .sources
            .get(&o.file)
            .and_then(|s| locate(s.format, &s.text, &field));
        ManifestError {
            file: o.file.clone(),
            line,
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// Term sheet `i`, validated again from its `document` (so a manifest changed in code
    /// after loading is still checked).
    pub(crate) fn sheet(&self, i: usize) -> Result<Sheet, Vec<ManifestError>> {
        let t = &self.terms[i];
        let Some(doc) = &t.document else {
            return Err(vec![self.error(
                List::Terms,
                i,
                "",
                "needs `file:` (a sheet file) or `document:` (the sheet inline)",
            )]);
        };
        let v = validate_document(doc).map_err(|errors| {
            errors
                .into_iter()
                .map(|e| {
                    let pointer = FieldPath::default().key("document").dotted(&e.field);
                    self.error(List::Terms, i, &to_pointer(&pointer), e.message)
                })
                .collect::<Vec<_>>()
        })?;
        Ok(Sheet {
            sheet_id: v.sheet().id.clone(),
            version: v.version().to_string(),
            sha256: v.sha256().to_owned(),
            document: doc.clone(),
            from_file: self
                .origins
                .terms
                .get(i)
                .and_then(|o| o.sheet_version_at.clone()),
        })
    }

    /// Where `list[i]` was defined, as `file:line`.
    pub(crate) fn place(&self, list: List, i: usize) -> String {
        let e = self.error(list, i, "", "");
        match e.line {
            Some(l) => format!("{}:{l}", e.file.display()),
            None => e.file.display().to_string(),
        }
    }
}

/// A term sheet of a manifest, as `plan` needs it.
#[derive(Debug, Clone)]
pub(crate) struct Sheet {
    pub sheet_id: String,
    /// Semantic version, normalized.
    pub version: String,
    pub sha256: String,
    /// The sheet as JSON, the `document` of `POST /v1/terms`.
    pub document: serde_json::Value,
    /// For a sheet read from a file: `file:line` of its `version`.
    pub from_file: Option<String>,
}

/// A dotted field path (`document.limits`) as the JSON pointer `Manifest::error` takes.
fn to_pointer(p: &FieldPath) -> String {
    p.0.iter()
        .map(|s| match s {
            Seg::Key(k) => format!("/{}", k.replace('~', "~0").replace('/', "~1")),
            Seg::Index(n) => format!("/{n}"),
        })
        .collect()
}

/// Parses and validates a term sheet held as JSON.
pub(crate) fn validate_document(
    doc: &serde_json::Value,
) -> Result<tollgate_terms::ValidatedSheet, Vec<tollgate_terms::TermsError>> {
    let text = serde_json::to_string_pretty(doc).map_err(|e| {
        vec![tollgate_terms::TermsError {
            file: PathBuf::new(),
            line: None,
            field: String::new(),
            message: e.to_string(),
        }]
    })?;
    tollgate_terms::parse_str(
        Path::new("document"),
        Some(tollgate_terms::Format::Json),
        &text,
    )?
    .validate()
}

/// Reads a manifest file, or every manifest file of a folder (recursively, in sorted path
/// order; `.yaml`, `.yml`, `.toml` and `.json`; hidden files and folders skipped), and
/// checks it. Every problem of every file is reported at once.
///
/// In a folder, a file whose top level has an `openapi` (or `swagger`) key is an OpenAPI
/// document, and a file whose top level has `id`, `version` and `grants` but none of
/// the seven manifest lists is a term sheet: neither is a manifest,
/// and both are skipped; manifests reference such files by path.
pub fn load(path: &Path) -> Result<Manifest, Vec<ManifestError>> {
    let mut loader = Loader::default();
    if path.is_dir() {
        let mut files = Vec::new();
        walk(path, &mut files).map_err(|e| vec![io_error(path, &e)])?;
        files.sort();
        for f in files {
            let Some(format) = Format::from_path(&f) else {
                continue;
            };
            match std::fs::read_to_string(&f) {
                Ok(text) if is_openapi_document(format, &text) || is_term_sheet(format, &text) => {}
                Ok(text) => loader.add(&f, format, text),
                Err(e) => loader.errors.push(io_error(&f, &e)),
            }
        }
    } else {
        let format = Format::from_path(path).ok_or_else(|| {
            vec![ManifestError {
                file: path.to_owned(),
                line: None,
                field: String::new(),
                message: "is not a .yaml, .yml, .toml or .json file".into(),
            }]
        })?;
        let text = std::fs::read_to_string(path).map_err(|e| vec![io_error(path, &e)])?;
        loader.add(path, format, text);
    }
    loader.finish()
}

/// Parses one manifest held in memory, as if read from `file` (which names it in errors
/// and anchors relative `openapi:` paths).
pub fn parse_str(file: &Path, format: Format, text: &str) -> Result<Manifest, Vec<ManifestError>> {
    let mut loader = Loader::default();
    loader.add(file, format, text.to_owned());
    loader.finish()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

fn io_error(path: &Path, e: &std::io::Error) -> ManifestError {
    ManifestError {
        file: path.to_owned(),
        line: None,
        field: String::new(),
        message: format!("cannot read: {e}"),
    }
}

/// The keys of a file's top-level mapping; none when it does not parse as one.
fn top_keys(format: Format, text: &str) -> Vec<String> {
    match format {
        Format::Yaml => match yaml_serde::from_str::<yaml_serde::Value>(text) {
            Ok(yaml_serde::Value::Mapping(m)) => m
                .keys()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        },
        Format::Toml => match toml::from_str::<toml::Table>(text) {
            Ok(t) => t.keys().cloned().collect(),
            Err(_) => Vec::new(),
        },
        Format::Json => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
            _ => Vec::new(),
        },
    }
}

fn is_openapi_document(format: Format, text: &str) -> bool {
    top_keys(format, text)
        .iter()
        .any(|k| k == "openapi" || k == "swagger")
}

/// A term sheet: `id`, `version` and `grants` at the top, and none of a manifest's lists.
fn is_term_sheet(format: Format, text: &str) -> bool {
    let keys = top_keys(format, text);
    let has = |k: &str| keys.iter().any(|x| x == k);
    has("id")
        && has("version")
        && has("grants")
        && ![
            "orgs",
            "apis",
            "terms",
            "plans",
            "apps",
            "subscriptions",
            "verification_keys",
        ]
        .iter()
        .any(|k| has(k))
}

#[derive(Default)]
struct Loader {
    manifest: Manifest,
    errors: Vec<ManifestError>,
}

impl Loader {
    fn add(&mut self, file: &Path, format: Format, text: String) {
        match parse_file(file, format, &text) {
            Ok(mut parsed) => {
                for (i, api) in parsed.apis.iter_mut().enumerate() {
                    if let Err(message) = resolve_openapi(file, api) {
                        let field = FieldPath::entity("apis", i).key("openapi");
                        self.errors.push(ManifestError {
                            file: file.to_owned(),
                            line: locate(format, &text, &field),
                            field: field.to_string(),
                            message,
                        });
                    }
                }
                let mut sheet_places = Vec::new();
                for (i, t) in parsed.terms.iter_mut().enumerate() {
                    match resolve_terms(file, format, &text, i, t) {
                        Ok(place) => sheet_places.push(place),
                        Err(e) => {
                            sheet_places.push(None);
                            self.errors.extend(e);
                        }
                    }
                }
                let m = &mut self.manifest;
                let o = &mut m.origins;
                let origin = |index| Origin {
                    file: file.to_owned(),
                    index,
                    sheet_version_at: None,
                };
                o.orgs.extend((0..parsed.orgs.len()).map(origin));
                o.apis.extend((0..parsed.apis.len()).map(origin));
                o.terms.extend(
                    sheet_places
                        .into_iter()
                        .enumerate()
                        .map(|(index, at)| Origin {
                            sheet_version_at: at,
                            ..origin(index)
                        }),
                );
                o.plans.extend((0..parsed.plans.len()).map(origin));
                o.apps.extend((0..parsed.apps.len()).map(origin));
                o.subscriptions
                    .extend((0..parsed.subscriptions.len()).map(origin));
                o.verification_keys
                    .extend((0..parsed.verification_keys.len()).map(origin));
                m.orgs.extend(parsed.orgs);
                m.apis.extend(parsed.apis);
                m.terms.extend(parsed.terms);
                m.plans.extend(parsed.plans);
                m.apps.extend(parsed.apps);
                m.subscriptions.extend(parsed.subscriptions);
                m.verification_keys.extend(parsed.verification_keys);
            }
            Err(e) => self.errors.push(e),
        }
        self.manifest
            .origins
            .sources
            .insert(file.to_owned(), Source { format, text });
    }

    fn finish(mut self) -> Result<Manifest, Vec<ManifestError>> {
        self.errors.extend(check(&self.manifest));
        if self.errors.is_empty() {
            Ok(self.manifest)
        } else {
            Err(self.errors)
        }
    }
}

/// Parses one file, reporting the first syntax or type error with its path and line.
fn parse_file(file: &Path, format: Format, text: &str) -> Result<ManifestFile, ManifestError> {
    let err = |field: FieldPath, line: Option<usize>, message: String| ManifestError {
        file: file.to_owned(),
        line: line.or_else(|| locate(format, text, &field)),
        field: field.to_string(),
        message,
    };
    match format {
        Format::Yaml => {
            // An empty file (or one of comments only) is an empty manifest.
            if matches!(
                yaml_serde::from_str::<yaml_serde::Value>(text),
                Ok(yaml_serde::Value::Null)
            ) {
                return Ok(ManifestFile::default());
            }
            let de = yaml_serde::Deserializer::from_str(text);
            serde_path_to_error::deserialize(de).map_err(|e| {
                let line = e.inner().location().map(|l| l.line());
                let msg = clean_message(&e.inner().to_string());
                err(from_serde(e.path()), line, msg)
            })
        }
        Format::Toml => {
            let de = toml::Deserializer::parse(text).map_err(|e| {
                let line = e.span().map(|s| line_of_offset(text, s.start));
                err(FieldPath::default(), line, e.message().to_owned())
            })?;
            serde_path_to_error::deserialize(de).map_err(|e| {
                let line = e.inner().span().map(|s| line_of_offset(text, s.start));
                let msg = e.inner().message().to_owned();
                err(from_serde(e.path()), line, msg)
            })
        }
        Format::Json => {
            let mut de = serde_json::Deserializer::from_str(text);
            serde_path_to_error::deserialize(&mut de).map_err(|e| {
                let line = Some(e.inner().line()).filter(|&l| l > 0);
                let msg = clean_message(&e.inner().to_string());
                err(from_serde(e.path()), line, msg)
            })
        }
    }
}

/// Drops the position and path that YAML and JSON errors repeat in their text, since
/// `ManifestError` carries both separately.
fn clean_message(msg: &str) -> String {
    let msg = match msg.rfind(" at line ") {
        Some(i) if msg[i..].contains(" column ") => &msg[..i],
        _ => msg,
    };
    // yaml_serde prefixes `path: ` for errors inside the document.
    match msg.split_once(": ") {
        Some((p, rest)) if !p.contains(' ') && (p.contains('.') || p.contains('[')) => {
            rest.to_owned()
        }
        _ => msg.to_owned(),
    }
}

/// Replaces an `openapi:` file path by the document it names.
fn resolve_openapi(manifest_file: &Path, api: &mut ApiSpec) -> Result<(), String> {
    let doc = match &api.openapi {
        None => return Ok(()),
        Some(OpenApi::Inline(doc)) => doc.clone(),
        Some(OpenApi::File(rel)) => {
            let path = manifest_file
                .parent()
                .unwrap_or_else(|| Path::new(""))
                .join(rel);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            parse_openapi_text(&path, &text)?
        }
    };
    if !doc.is_object() {
        return Err("the OpenAPI document must be a mapping".into());
    }
    api.openapi = Some(OpenApi::Inline(doc));
    Ok(())
}

/// Loads and validates a `terms:` entry: reads its `file:` (relative to the manifest) or
/// takes its inline `document:`, and replaces both by the validated sheet as JSON.
/// Returns, for a file, `file:line` of the sheet's `version` (for later messages).
fn resolve_terms(
    manifest_file: &Path,
    format: Format,
    text: &str,
    i: usize,
    t: &mut TermsSpec,
) -> Result<Option<String>, Vec<ManifestError>> {
    let entry = FieldPath::entity("terms", i);
    let at = |field: FieldPath, message: String| ManifestError {
        file: manifest_file.to_owned(),
        line: locate(format, text, &field)
            .or_else(|| locate(format, text, &entry.clone().key("document")))
            .or_else(|| locate(format, text, &entry)),
        field: field.to_string(),
        message,
    };
    let to_json = |v: &tollgate_terms::ValidatedSheet| {
        serde_json::to_value(v.sheet()).map_err(|e| vec![at(entry.clone(), e.to_string())])
    };
    match (&t.file, &t.document) {
        (Some(_), Some(_)) => Err(vec![at(
            entry.clone().key("document"),
            "give either `file:` or `document:`, not both".into(),
        )]),
        (None, None) => Err(vec![at(
            entry.clone(),
            "needs `file:` (a sheet file) or `document:` (the sheet inline)".into(),
        )]),
        (Some(rel), None) => {
            // Without `.` components, so messages read `dir/sheet.yaml`, not `dir/./sheet.yaml`.
            let path: PathBuf = manifest_file
                .parent()
                .unwrap_or_else(|| Path::new(""))
                .join(rel)
                .components()
                .filter(|c| !matches!(c, std::path::Component::CurDir))
                .collect();
            let field = entry.clone().key("file");
            let placed = |errors: Vec<tollgate_terms::TermsError>| {
                errors
                    .iter()
                    .map(|e| at(field.clone(), e.to_string()))
                    .collect::<Vec<_>>()
            };
            let loaded = tollgate_terms::load(&path).map_err(placed)?;
            let v = loaded.validate().map_err(placed)?;
            let version_at = loaded
                .place(vec![tollgate_terms::Issue {
                    field: "version".into(),
                    message: String::new(),
                }])
                .into_iter()
                .next()
                .map(|e| match e.line {
                    Some(l) => format!("{}:{l}", e.file.display()),
                    None => e.file.display().to_string(),
                });
            t.document = Some(to_json(&v)?);
            t.file = None;
            Ok(version_at)
        }
        (None, Some(doc)) => {
            let document = entry.clone().key("document");
            let v = validate_document(doc).map_err(|errors| {
                errors
                    .into_iter()
                    .map(|e| {
                        let mut error = at(document.clone().dotted(&e.field), e.message);
                        // In TOML an inline sheet's problems point at its `[terms.document]`
                        // table, not at a line inside it.
                        if format == Format::Toml {
                            error.line = locate(format, text, &document).or(error.line);
                        }
                        error
                    })
                    .collect::<Vec<_>>()
            })?;
            t.document = Some(to_json(&v)?);
            Ok(None)
        }
    }
}

fn parse_openapi_text(path: &Path, text: &str) -> Result<serde_json::Value, String> {
    if Format::from_path(path) == Some(Format::Json) {
        serde_json::from_str(text).map_err(|e| {
            format!(
                "{}:{}: {}",
                path.display(),
                e.line(),
                clean_message(&e.to_string())
            )
        })
    } else {
        // YAML is a superset of JSON, so any other extension is read as YAML.
        yaml_serde::from_str::<yaml_serde::Value>(text)
            .map(yaml_to_json)
            .map_err(|e| {
                let line = e
                    .location()
                    .map(|l| format!(":{}", l.line()))
                    .unwrap_or_default();
                format!(
                    "{}{line}: {}",
                    path.display(),
                    clean_message(&e.to_string())
                )
            })
    }
}

/// Every problem visible from the manifest alone: invalid values, duplicate identities,
/// lifecycle fields that contradict each other.
fn check(m: &Manifest) -> Vec<ManifestError> {
    let mut errors = Vec::new();
    let mut push_field_errors = |list: List, i: usize, fe: FieldErrors| {
        for f in fe.0 {
            errors.push(m.error(list, i, &f.pointer, f.detail));
        }
    };

    let nil_org = OrgId(Default::default());
    for (i, o) in m.orgs.iter().enumerate() {
        let req = CreateOrg {
            slug: o.slug.clone(),
            name: o.name.clone(),
            kind: o.kind,
        };
        push_field_errors(List::Orgs, i, req.validate());
    }
    for (i, a) in m.apis.iter().enumerate() {
        let req = CreateApi {
            org_id: nil_org,
            slug: a.slug.clone(),
            name: a.name.clone(),
            version: a.version.clone().unwrap_or_else(|| "v1".into()),
            description: a.description.clone().unwrap_or_default(),
            base_path: a.base_path.clone(),
            hosts: a.hosts.clone().unwrap_or_default(),
            upstreams: a.upstreams.clone(),
            sandbox_upstreams: a.sandbox_upstreams.clone(),
            mtls: a.mtls,
            public: a.public,
            openapi: None,
        };
        let mut fe = req.validate();
        match (a.status, a.sunset) {
            (Some(ApiStatus::Deprecated), None) => {
                fe.push("/sunset", "is required when status is deprecated");
            }
            (status, Some(_)) if status != Some(ApiStatus::Deprecated) => {
                fe.push("/sunset", "is allowed only with status: deprecated");
            }
            _ => {}
        }
        push_field_errors(List::Apis, i, fe);
    }
    for (i, p) in m.plans.iter().enumerate() {
        // Stand-in ids, one per distinct slug, so core's duplicate check sees repeats.
        let mut ids: HashMap<&str, ApiId> = HashMap::new();
        let apis = p
            .apis
            .iter()
            .map(|pa| {
                let n = ids.len() as u128;
                PlanApi {
                    api_id: *ids
                        .entry(pa.api.as_str())
                        .or_insert_with(|| ApiId(uuid::Uuid::from_u128(n + 1))),
                    operations: pa.operations.clone(),
                }
            })
            .collect();
        let req = CreatePlan {
            org_id: nil_org,
            slug: p.slug.clone(),
            name: p.name.clone(),
            description: p.description.clone().unwrap_or_default(),
            visibility: p.visibility,
            approval_required: p.approval_required.unwrap_or(false),
            apis,
            max_key_lifetime_days: p.max_key_lifetime_days,
        };
        let mut fe = req.validate();
        for (j, pa) in p.apis.iter().enumerate() {
            if let Some((org, _)) = pa.api.split_once('/')
                && org != p.org
            {
                fe.push(
                    format!("/apis/{j}/api"),
                    format!(
                        "is an API of org {org:?}; a plan may only include APIs of its own org {:?}",
                        p.org
                    ),
                );
            }
        }
        // Core names the field `api_id`; the manifest calls it `api`.
        let fe = FieldErrors(
            fe.0.into_iter()
                .map(|mut f| {
                    if let Some(prefix) = f.pointer.strip_suffix("/api_id") {
                        f.pointer = format!("{prefix}/api");
                    }
                    f
                })
                .collect(),
        );
        push_field_errors(List::Plans, i, fe);
    }
    for (i, a) in m.apps.iter().enumerate() {
        let req = CreateApp {
            org_id: nil_org,
            slug: a.slug.clone(),
            name: a.name.clone(),
            description: a.description.clone().unwrap_or_default(),
        };
        push_field_errors(List::Apps, i, req.validate());
    }

    // Duplicate identities, each reported where it repeats.
    let mut dup = |list: List, keys: Vec<String>, what: &str| {
        let mut first: HashMap<&str, usize> = HashMap::new();
        for (i, k) in keys.iter().enumerate() {
            if let Some(&f) = first.get(k.as_str()) {
                let pointer = if what == "base path" {
                    "/base_path"
                } else {
                    "/slug"
                };
                errors.push(m.error(
                    list,
                    i,
                    pointer,
                    format!(
                        "duplicate {what} {k:?}; first defined at {}",
                        m.place(list, f)
                    ),
                ));
            } else {
                first.insert(k, i);
            }
        }
    };
    dup(
        List::Orgs,
        m.orgs.iter().map(|o| o.slug.clone()).collect(),
        "org",
    );
    dup(
        List::Apis,
        m.apis
            .iter()
            .map(|a| format!("{}/{}", a.org, a.slug))
            .collect(),
        "API",
    );
    dup(
        List::Apis,
        m.apis.iter().map(|a| a.base_path.clone()).collect(),
        "base path",
    );
    dup(
        List::Plans,
        m.plans
            .iter()
            .map(|p| format!("{}/{}", p.org, p.slug))
            .collect(),
        "plan",
    );
    dup(
        List::Apps,
        m.apps
            .iter()
            .map(|a| format!("{}/{}", a.org, a.slug))
            .collect(),
        "app",
    );
    check_keys_and_subscriptions(m, &mut errors);
    // Term sheets: one content per (org, id, version).
    let mut first: HashMap<(String, String, String), usize> = HashMap::new();
    for i in 0..m.terms.len() {
        let Ok(s) = m.sheet(i) else {
            continue; // reported when it was read
        };
        let key = (m.terms[i].org.clone(), s.sheet_id, s.version);
        if let Some(&f) = first.get(&key) {
            errors.push(m.error(
                List::Terms,
                i,
                "",
                format!(
                    "duplicate term sheet {} {} of org {:?}; first defined at {}",
                    key.1,
                    key.2,
                    key.0,
                    m.place(List::Terms, f)
                ),
            ));
        } else {
            first.insert(key, i);
        }
    }
    errors
}

// ------------------------------------------------------------------ signed acceptances

/// Standard base64 (the admin API's encoding of keys and signatures).
pub(crate) fn base64_bytes(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// Length of a raw Ed25519 public key.
const PUBLIC_KEY_LEN: usize = 32;
/// Length of an Ed25519 signature.
const SIGNATURE_LEN: usize = 64;

/// Checks `a`'s signature with the base64 public key `public_key`: `Err` says why not,
/// for the `signature` field.
pub(crate) fn verify_acceptance(a: &Acceptance, public_key: &str) -> Result<(), String> {
    let key = base64_bytes(public_key)
        .filter(|k| k.len() == PUBLIC_KEY_LEN)
        .ok_or_else(|| format!("the public key of {} is not valid", a.key_id))?;
    let sig = base64_bytes(&a.signature)
        .filter(|s| s.len() == SIGNATURE_LEN)
        .ok_or_else(|| "must be a base64 Ed25519 signature (64 bytes)".to_owned())?;
    tollgate_keyring::verify_ed25519(&key, &a.record.signing_bytes(), &sig).map_err(|_| {
        format!(
            "does not verify with key {}: the record or its signature was changed after signing; acceptance records are imported exactly as exported",
            a.key_id
        )
    })
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `verification_keys` and `subscriptions`: well-formed keys, one public key per key
/// id, one entry per (app, plan, mode), no cancelled state, well-formed acceptance records
/// of one subscription, and signatures that verify with the keys the manifest holds
/// (those it does not hold are checked by `plan` against the marketplace's keys).
fn check_keys_and_subscriptions(m: &Manifest, errors: &mut Vec<ManifestError>) {
    let mut keys: HashMap<&str, (usize, &str)> = HashMap::new();
    for (k, key) in m.verification_keys.iter().enumerate() {
        if uuid::Uuid::parse_str(&key.key_id).is_err() {
            errors.push(m.error(
                List::VerificationKeys,
                k,
                "/key_id",
                "must be a key id (a UUID)",
            ));
        }
        if base64_bytes(&key.public_key).is_none_or(|b| b.len() != PUBLIC_KEY_LEN) {
            errors.push(m.error(
                List::VerificationKeys,
                k,
                "/public_key",
                "must be a raw Ed25519 public key (32 bytes), base64",
            ));
            continue;
        }
        match keys.get(key.key_id.as_str()) {
            Some((f, pk)) if *pk != key.public_key => errors.push(m.error(
                List::VerificationKeys,
                k,
                "/public_key",
                format!(
                    "key {} has another public key at {}; one key id, one key",
                    key.key_id,
                    m.place(List::VerificationKeys, *f)
                ),
            )),
            Some(_) => {} // the same key listed twice (say, in two files): harmless
            None => {
                keys.insert(&key.key_id, (k, &key.public_key));
            }
        }
    }

    // An app may hold a live and a test subscription to the same plan.
    type SubKey<'a> = (&'a crate::spec::SlugRef, &'a crate::spec::SlugRef, KeyMode);
    let mut first: HashMap<SubKey, usize> = HashMap::new();
    for (i, s) in m.subscriptions.iter().enumerate() {
        if let Some(&f) = first.get(&(&s.app, &s.plan, s.mode)) {
            errors.push(m.error(
                List::Subscriptions,
                i,
                "/plan",
                format!(
                    "duplicate {} subscription of app {} to plan {}; first defined at {}",
                    s.mode.as_str(),
                    s.app,
                    s.plan,
                    m.place(List::Subscriptions, f)
                ),
            ));
        } else {
            first.insert((&s.app, &s.plan, s.mode), i);
        }
        if s.state == SubscriptionState::Cancelled {
            errors.push(m.error(
                List::Subscriptions,
                i,
                "/state",
                "must be active, pending or suspended: cancelled subscriptions are not carried over",
            ));
        }
        for (j, a) in s.acceptances.iter().enumerate() {
            let mut err = |field: &str, message: String| {
                errors.push(m.error(
                    List::Subscriptions,
                    i,
                    &format!("/acceptances/{j}{field}"),
                    message,
                ));
            };
            let r = &a.record;
            if r.type_ != ACCEPTANCE_V1 {
                err("/record/type", format!("must be {ACCEPTANCE_V1}"));
            }
            if !is_sha256_hex(&r.terms_sha256) {
                err(
                    "/record/terms_sha256",
                    "must be a SHA-256 (64 hex digits)".into(),
                );
            }
            if let Some(a0) = s.acceptances.first()
                && r.subscription_id != a0.record.subscription_id
            {
                err(
                    "/record/subscription_id",
                    format!(
                        "is {}, but acceptances[0] is of subscription {}: a subscription's records all name it",
                        r.subscription_id, a0.record.subscription_id
                    ),
                );
            }
            if uuid::Uuid::parse_str(&a.key_id).is_err() {
                err("/key_id", "must be a key id (a UUID)".into());
                continue;
            }
            if base64_bytes(&a.signature).is_none_or(|b| b.len() != SIGNATURE_LEN) {
                err(
                    "/signature",
                    "must be a base64 Ed25519 signature (64 bytes)".into(),
                );
                continue;
            }
            if let Some((_, pk)) = keys.get(a.key_id.as_str())
                && let Err(message) = verify_acceptance(a, pk)
            {
                err("/signature", message);
            }
        }
    }
}
