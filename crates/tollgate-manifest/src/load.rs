//! Reading manifests: files and folders, the three formats, referenced OpenAPI documents,
//! and every check that needs only the manifest itself. The only IO is reading the files
//! named by the caller and the OpenAPI files those name.

use crate::error::ManifestError;
use crate::locate::{FieldPath, Format, line_of_offset, locate};
use crate::spec::{ApiSpec, AppSpec, ManifestFile, OpenApi, OrgSpec, PlanSpec, yaml_to_json};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use tollgate_core::model::{ApiStatus, CreateApi, CreateApp, CreateOrg, CreatePlan, PlanApi};
use tollgate_core::{ApiId, FieldErrors, OrgId};

/// A whole manifest: every entity of every file read, in reading order.
///
/// Equality compares the entities only, not where they came from, so a YAML file and
/// its TOML twin give equal manifests.
#[derive(Debug, Clone, Default)]
pub struct Manifest {
    pub orgs: Vec<OrgSpec>,
    pub apis: Vec<ApiSpec>,
    pub plans: Vec<PlanSpec>,
    pub apps: Vec<AppSpec>,
    origins: Origins,
}

impl PartialEq for Manifest {
    fn eq(&self, other: &Self) -> bool {
        self.orgs == other.orgs
            && self.apis == other.apis
            && self.plans == other.plans
            && self.apps == other.apps
    }
}

/// Which list an entity is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum List {
    Orgs,
    Apis,
    Plans,
    Apps,
}

impl List {
    fn key(self) -> &'static str {
        match self {
            List::Orgs => "orgs",
            List::Apis => "apis",
            List::Plans => "plans",
            List::Apps => "apps",
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Origins {
    orgs: Vec<Origin>,
    apis: Vec<Origin>,
    plans: Vec<Origin>,
    apps: Vec<Origin>,
    sources: BTreeMap<PathBuf, Source>,
}

#[derive(Debug, Clone)]
struct Origin {
    file: PathBuf,
    /// Position in its file's list.
    index: usize,
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
            List::Plans => &self.origins.plans,
            List::Apps => &self.origins.apps,
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

    /// Where `list[i]` was defined, as `file:line`.
    fn place(&self, list: List, i: usize) -> String {
        let e = self.error(list, i, "", "");
        match e.line {
            Some(l) => format!("{}:{l}", e.file.display()),
            None => e.file.display().to_string(),
        }
    }
}

/// Reads a manifest file, or every manifest file of a folder (recursively, in sorted path
/// order; `.yaml`, `.yml`, `.toml` and `.json`; hidden files and folders skipped), and
/// checks it. Every problem of every file is reported at once.
///
/// In a folder, a file whose top level has an `openapi` (or `swagger`) key is an OpenAPI
/// document, not a manifest, and is skipped; manifests reference such files by path.
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
                Ok(text) if is_openapi_document(format, &text) => {}
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

fn is_openapi_document(format: Format, text: &str) -> bool {
    let keys: Vec<String> = match format {
        Format::Yaml => match yaml_serde::from_str::<yaml_serde::Value>(text) {
            Ok(yaml_serde::Value::Mapping(m)) => m
                .keys()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect(),
            _ => return false,
        },
        Format::Toml => match toml::from_str::<toml::Table>(text) {
            Ok(t) => t.keys().cloned().collect(),
            Err(_) => return false,
        },
        Format::Json => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
            _ => return false,
        },
    };
    keys.iter().any(|k| k == "openapi" || k == "swagger")
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
                let m = &mut self.manifest;
                let o = &mut m.origins;
                let origin = |index| Origin {
                    file: file.to_owned(),
                    index,
                };
                o.orgs.extend((0..parsed.orgs.len()).map(origin));
                o.apis.extend((0..parsed.apis.len()).map(origin));
                o.plans.extend((0..parsed.plans.len()).map(origin));
                o.apps.extend((0..parsed.apps.len()).map(origin));
                m.orgs.extend(parsed.orgs);
                m.apis.extend(parsed.apis);
                m.plans.extend(parsed.plans);
                m.apps.extend(parsed.apps);
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
                err(FieldPath::from_serde(e.path()), line, msg)
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
                err(FieldPath::from_serde(e.path()), line, msg)
            })
        }
        Format::Json => {
            let mut de = serde_json::Deserializer::from_str(text);
            serde_path_to_error::deserialize(&mut de).map_err(|e| {
                let line = Some(e.inner().line()).filter(|&l| l > 0);
                let msg = clean_message(&e.inner().to_string());
                err(FieldPath::from_serde(e.path()), line, msg)
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
    errors
}
