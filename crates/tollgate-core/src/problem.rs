//! The one table of problem codes (DESIGN.md §6). Every HTTP surface — admin API, gateway,
//! ingestion — answers errors as RFC 9457 problem details whose `type` is
//! `PROBLEM_BASE` + slug. Slugs are stable: renaming one is a breaking change.

/// Base of every problem `type` URI. The control plane also serves each slug's page at
/// `/problems/<slug>`.
pub const PROBLEM_BASE: &str = "https://tollgate.dev/problems/";

macro_rules! error_codes {
    ($($variant:ident => ($status:literal, $slug:literal, $title:literal, $doc:literal)),* $(,)?) => {
        /// A stable class of error with its HTTP status and problem `type` slug.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode { $($variant),* }

        impl ErrorCode {
            /// Every code, in table order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            /// The HTTP status this code answers with.
            pub const fn status(self) -> u16 { match self { $(ErrorCode::$variant => $status),* } }
            /// The stable slug, last segment of the `type` URI.
            pub const fn slug(self) -> &'static str { match self { $(ErrorCode::$variant => $slug),* } }
            /// Short, human-readable summary (the problem `title`).
            pub const fn title(self) -> &'static str { match self { $(ErrorCode::$variant => $title),* } }
            /// What the error means and what to do about it.
            pub const fn description(self) -> &'static str { match self { $(ErrorCode::$variant => $doc),* } }
        }
    };
}

error_codes! {
    BadRequest => (400, "bad-request", "Bad request",
        "The request could not be read: malformed JSON, a body of the wrong content type, or a malformed header or query parameter. Fix the request; retrying it unchanged will fail again."),
    ValidationFailed => (422, "validation-failed", "Validation failed",
        "The request was well-formed but some fields are invalid. The `errors` member lists every bad field at once, each with a JSON pointer into the request body and a message."),
    Unauthenticated => (401, "unauthenticated", "Authentication required",
        "No valid credential was presented. Send `Authorization: Bearer <token>` with an operator token or a personal API token that has not expired or been revoked."),
    Forbidden => (403, "forbidden", "Forbidden",
        "The credential is valid and the object is visible to you, but your role does not permit this action. Ask an owner or admin of the organization."),
    NotFound => (404, "not-found", "Not found",
        "No such object, or it belongs to another organization. Tollgate answers both cases the same way so that ids of other tenants cannot be probed."),
    MethodNotAllowed => (405, "method-not-allowed", "Method not allowed",
        "The path exists but does not accept this HTTP method. The `Allow` header lists the methods it accepts."),
    Conflict => (409, "conflict", "Conflict",
        "The change conflicts with existing state, for example a slug that is already taken within its scope."),
    InvalidTransition => (409, "invalid-transition", "Invalid state transition",
        "The object's lifecycle does not allow moving from its current state to the requested one (for example a retired API cannot be published again)."),
    PreconditionFailed => (412, "precondition-failed", "Precondition failed",
        "The `If-Match` header does not match the object's current `ETag`: someone changed it since you read it. Read it again, re-apply your change and retry."),
    PayloadTooLarge => (413, "payload-too-large", "Payload too large",
        "The request body exceeds the configured limit."),
    UnsupportedMediaType => (415, "unsupported-media-type", "Unsupported media type",
        "The request body must be `application/json` (or, where a route says so, YAML)."),
    IdempotencyKeyReused => (422, "idempotency-key-reused", "Idempotency key reused",
        "This `Idempotency-Key` was already used with a different request body. Use a new key for a new request."),
    IdempotencyInProgress => (409, "idempotency-in-progress", "Idempotent request in progress",
        "A request with this `Idempotency-Key` is still being processed. Retry after it completes to receive its stored response."),
    InvalidOpenApi => (422, "invalid-openapi", "Invalid OpenAPI document",
        "The OpenAPI document could not be imported. The `errors` member lists each problem with a JSON pointer into the document."),
    RateLimited => (429, "rate-limited", "Too many requests",
        "The caller sent too many requests in a short time. Wait for the number of seconds in `Retry-After`."),
    RouteNotFound => (404, "route-not-found", "No route",
        "The gateway has no published API under this path."),
    CredentialRequired => (401, "credential-required", "Credential required",
        "This API requires a consumer credential. Subscribe to one of its plans and send the credential you were issued."),
    CredentialMalformed => (401, "credential-malformed", "Malformed credential",
        "The credential is not a Tollgate API key or token: wrong prefix, length or characters. Send the key exactly as it was shown when it was created, as `Authorization: Bearer <key>` or `X-API-Key: <key>`."),
    CredentialChecksum => (401, "credential-checksum", "Credential checksum mismatch",
        "The API key's checksum (its last six characters) does not match its body: the key was mistyped or truncated. Copy it again from where you stored it."),
    CredentialUnknown => (401, "credential-unknown", "Unknown credential",
        "The credential is well-formed but no such key exists in this marketplace (or it belongs to the other mode: live keys are `tg_live_`, test keys `tg_test_`)."),
    CredentialExpired => (401, "credential-expired", "Credential expired",
        "The credential's lifetime has ended. Every key is time-bound: create a new key for the app (or rotate the old one before it expires)."),
    CredentialRevoked => (401, "credential-revoked", "Credential revoked",
        "The credential was revoked by the app's owner or an operator and is refused from the next request on. Use another key of the app."),
    TokenMalformed => (401, "token-malformed", "Malformed access token",
        "The bearer token is not a well-formed Tollgate access token (a compact JWS with the claims of RFC 9068). Request a new token from the token endpoint."),
    TokenBadSignature => (401, "token-bad-signature", "Access token signature invalid",
        "The access token's signature does not verify under the marketplace's published keys (`/.well-known/jwks.json`): it was altered, signed by someone else, uses an algorithm Tollgate does not accept (`none`, HMAC), or names an unknown key."),
    TokenWrongType => (401, "token-wrong-type", "Not an access token",
        "The token's `typ` is not `at+jwt`: an ID token, a client assertion or a gateway assertion cannot be used as an access token."),
    TokenWrongIssuer => (401, "token-wrong-issuer", "Access token from another issuer",
        "The token's `iss` is not this marketplace's authorization server."),
    TokenWrongAudience => (401, "token-wrong-audience", "Access token for another audience",
        "The token's `aud` does not name this gateway."),
    TokenExpired => (401, "token-expired", "Access token expired",
        "The access token's `exp` has passed. Request a new token (client credentials tokens are short-lived by design)."),
    TokenNotYetValid => (401, "token-not-yet-valid", "Access token not yet valid",
        "The token's `nbf` or `iat` lies in the future beyond the allowed clock skew. Check the clocks of the client and the marketplace."),
    TokenCertificateMismatch => (401, "token-certificate-mismatch", "Access token bound to another certificate",
        "The access token is bound to a TLS client certificate (`cnf.x5t#S256`, RFC 8705) and this connection presented another one, or none. Call over mutual TLS with the certificate the token was issued to."),
    ClientCertificateRequired => (401, "client-certificate-required", "Client certificate required",
        "The API requires mutual TLS: call it over HTTPS presenting the TLS client certificate registered for your OAuth client."),
    TokenRevoked => (401, "token-revoked", "Access token revoked",
        "The access token, or the OAuth client it was issued to, was revoked. Request a new token with a valid client."),
    SignatureInvalid => (401, "signature-invalid", "Request signature invalid",
        "The request's HTTP message signature (RFC 9421) does not verify: `Signature`/`Signature-Input` are malformed, a required component (`@method`, `@authority`, `@path`, `@query`, and `content-digest` when there is a body) is not covered, the signature does not match, or the body does not match its `Content-Digest`."),
    SignatureUnknownKey => (401, "signature-unknown-key", "Unknown signing key",
        "The signature's `keyid` names no registered, unexpired signing key of this marketplace. Register the public key for the app, or use its id as `keyid`."),
    SignatureStale => (401, "signature-stale", "Request signature too old or not yet valid",
        "The signature's `created` is outside the accepted window around the gateway's clock (or `expires` has passed). Sign each request when it is sent."),
    SignatureReplayed => (401, "signature-replayed", "Request signature replayed",
        "The signature's `nonce` was already used with this key within the accepted window: a signed request is accepted once."),
    ScopeDenied => (403, "scope-denied", "Outside the credential's scope",
        "The credential is valid but not for this operation: the key is limited to other operations, or lacks a scope the plan's terms require for it. Use a key with the needed scopes, or widen the key."),
    IpDenied => (403, "ip-denied", "Client address not allowed",
        "The credential has an IP allowlist and the request came from an address outside it."),
    SubscriptionRequired => (403, "subscription-required", "No subscription for this operation",
        "The app has no subscription of the key's mode (live or test) to a plan that includes this operation. Subscribe to a plan that covers it."),
    SubscriptionInactive => (403, "subscription-inactive", "Subscription not active",
        "The app's subscription that covers this operation is pending approval, suspended or ended. Calls are refused until it is active again."),
    AccessDenied => (403, "access-denied", "Denied by the terms",
        "The subscription's term sheet (or the marketplace's operator policy) does not allow this call now: for example outside the allowed hours, on a blackout date, from a region the terms exclude, or without a permitted purpose or required consent. The `detail` says which kind of rule applied."),
    NotAcceptable => (406, "not-acceptable", "Not acceptable",
        "None of the media types the `Accept` header allows is one this operation answers with (in test mode, one its OpenAPI document has an example or schema for)."),
    MockUnavailable => (501, "mock-unavailable", "No test response",
        "A test-mode call reached an API without a sandbox upstream, and its OpenAPI document declares no usable response for the operation. The provider should add a sandbox upstream or response examples."),
    QuotaExceeded => (429, "quota-exceeded", "Quota exceeded",
        "The subscription used its quota for the current period. The `RateLimit` header says when it resets and `Retry-After` how many seconds remain; refused calls do not count."),
    HeadersTooLarge => (431, "headers-too-large", "Request header fields too large",
        "The request's header section exceeds the gateway's limit. Send fewer or smaller headers (large cookies are the usual cause)."),
    UpstreamUnavailable => (502, "upstream-unavailable", "Upstream unavailable",
        "The gateway could not reach the API's upstream server, or the upstream broke the exchange (connection refused or reset, malformed response). The provider's service is failing; retry later."),
    UpstreamTimeout => (504, "upstream-timeout", "Upstream timeout",
        "The API's upstream server did not accept a connection or answer within the gateway's time limit. The upstream may or may not have processed the request; retry only if the operation is idempotent."),
    CircuitOpen => (503, "upstream-circuit-open", "Upstream circuit open",
        "The API's upstream servers failed repeatedly, so the gateway stopped sending them requests for a short cool-down instead of letting every call wait for a failure. The request was not sent upstream; retry after the number of seconds in `Retry-After`."),
    Internal => (500, "internal", "Internal error",
        "Tollgate failed unexpectedly. Nothing was changed. The error was logged with the request id given in `request_id`; report it to the operator."),
    Unavailable => (503, "unavailable", "Service unavailable",
        "A dependency (the store) is not reachable or the server is shutting down. Retry later."),
}

impl ErrorCode {
    /// The absolute problem `type` URI.
    pub fn type_uri(self) -> String {
        format!("{PROBLEM_BASE}{}", self.slug())
    }

    /// Looks a code up by its slug.
    pub fn from_slug(slug: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.slug() == slug)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn slugs_are_unique_and_url_safe() {
        let mut seen = HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.slug()), "duplicate slug {}", code.slug());
            assert!(
                code.slug()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'-')
            );
            assert!((400..600).contains(&code.status()));
            assert_eq!(ErrorCode::from_slug(code.slug()), Some(*code));
        }
    }
}

#[cfg(test)]
mod doc_tests {
    use super::ErrorCode;

    /// docs/problems.md documents every slug with its status and title.
    #[test]
    fn every_code_is_documented() {
        let doc = include_str!("../../../docs/problems.md");
        for code in ErrorCode::ALL {
            let row = format!(
                "| `{}` | {} | {} |",
                code.slug(),
                code.status(),
                code.title()
            );
            assert!(
                doc.contains(&row),
                "docs/problems.md lacks or misstates: {row}"
            );
        }
    }
}
