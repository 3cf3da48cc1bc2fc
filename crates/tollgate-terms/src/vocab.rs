//! The controlled vocabularies of term sheets: data categories and purposes, named after
//! the W3C Data Privacy Vocabulary (DPV, DPV-PD) in kebab case. Providers extend them
//! with `x-` names (`x-weather-station-id`), which validate but carry no built-in meaning.

/// A vocabulary entry: the name used in files, words for rendering, and whether it is a
/// special category of personal data (GDPR art. 9 and 10), which makes data sensitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Term {
    pub name: &'static str,
    pub words: &'static str,
    pub special: bool,
}

const fn t(name: &'static str, words: &'static str, special: bool) -> Term {
    Term {
        name,
        words,
        special,
    }
}

/// Data categories (DPV-PD top-level categories).
pub const CATEGORIES: &[Term] = &[
    t(
        "identifying",
        "identifying data (names, identifiers)",
        false,
    ),
    t("contact", "contact data (e-mail, phone, address)", false),
    t("demographic", "demographic data (age, gender)", false),
    t(
        "financial",
        "financial data (accounts, payments, income)",
        false,
    ),
    t("location", "location data", false),
    t(
        "tracking",
        "tracking data (device, online identifiers)",
        false,
    ),
    t(
        "behavioural",
        "behavioural data (usage, preferences)",
        false,
    ),
    t(
        "professional",
        "professional data (employment, education)",
        false,
    ),
    t(
        "social",
        "social data (relationships, communications)",
        false,
    ),
    t("household", "household data", false),
    t("public-record", "data from public records", false),
    t("authentication", "authentication data (credentials)", false),
    t("health", "health data", true),
    t("genetic", "genetic data", true),
    t("biometric", "biometric data", true),
    t(
        "ethnic-origin",
        "data revealing racial or ethnic origin",
        true,
    ),
    t(
        "political-opinion",
        "data revealing political opinions",
        true,
    ),
    t(
        "religious-belief",
        "data revealing religious or philosophical beliefs",
        true,
    ),
    t("trade-union", "data revealing trade union membership", true),
    t("sex-life", "data on sex life or sexual orientation", true),
    t(
        "criminal",
        "data on criminal convictions and offences",
        true,
    ),
];

/// Purposes of processing (DPV purposes).
pub const PURPOSES: &[Term] = &[
    t("service-provision", "providing your service", false),
    t("customer-management", "managing your customers", false),
    t("personalisation", "personalisation", false),
    t("marketing", "marketing", false),
    t("analytics", "analytics", false),
    t("research", "research and development", false),
    t("fraud-prevention", "fraud prevention and detection", false),
    t("security", "security", false),
    t(
        "legal-compliance",
        "compliance with legal obligations",
        false,
    ),
    t("payment", "payment processing", false),
    t("healthcare", "healthcare provision", false),
];

/// Whether `name` is an extension name: `x-` followed by lowercase letters, digits and
/// `-`.
pub fn is_extension(name: &str) -> bool {
    name.strip_prefix("x-").is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    })
}

/// The entry of `name` in `vocab`.
pub fn lookup(vocab: &'static [Term], name: &str) -> Option<&'static Term> {
    vocab.iter().find(|t| t.name == name)
}

/// Words for a category or purpose: the vocabulary's, or the name itself for extensions.
pub fn words(vocab: &[Term], name: &str) -> String {
    match vocab.iter().find(|t| t.name == name) {
        Some(t) => t.words.to_owned(),
        None => format!("`{name}`"),
    }
}

/// Whether the category is special (GDPR art. 9/10).
pub fn is_special_category(name: &str) -> bool {
    CATEGORIES.iter().any(|t| t.name == name && t.special)
}
