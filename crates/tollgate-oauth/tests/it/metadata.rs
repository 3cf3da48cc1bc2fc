//! RFC 8414 metadata, token and error responses, RFC 7662 introspection, RFC 7009
//! revocation requests.

use serde_json::json;
use tollgate_oauth::{
    AuthorizationServerMetadata, Error, ErrorResponse, IntrospectionResponse, RevocationRequest,
    TokenResponse, TokenTypeHint,
};

use crate::*;

#[test]
fn metadata_lists_the_endpoints_and_methods() {
    let m = AuthorizationServerMetadata::for_issuer("https://market.example/");
    let methods = json!([
        "client_secret_basic",
        "private_key_jwt",
        "tls_client_auth",
        "self_signed_tls_client_auth"
    ]);
    assert_eq!(
        serde_json::to_value(&m).unwrap(),
        json!({
            "issuer": "https://market.example/",
            "token_endpoint": "https://market.example/oauth/token",
            "jwks_uri": "https://market.example/.well-known/jwks.json",
            "response_types_supported": [],
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": methods,
            "token_endpoint_auth_signing_alg_values_supported": ["EdDSA", "ES256"],
            "revocation_endpoint": "https://market.example/oauth/revoke",
            "revocation_endpoint_auth_methods_supported": methods,
            "introspection_endpoint": "https://market.example/oauth/introspect",
            "introspection_endpoint_auth_methods_supported": methods,
            "tls_client_certificate_bound_access_tokens": true,
        })
    );
    let back: AuthorizationServerMetadata =
        serde_json::from_value(serde_json::to_value(&m).unwrap()).unwrap();
    assert_eq!(back, m);
}

#[test]
fn token_and_error_responses() {
    let c = claims();
    let r = TokenResponse::bearer("tok".into(), &c);
    assert_eq!(
        serde_json::to_value(&r).unwrap(),
        json!({"access_token": "tok", "token_type": "Bearer", "expires_in": 300, "scope": "read write"})
    );
    let e = ErrorResponse::from_error(&Error::InvalidScope("admin".into())).unwrap();
    assert_eq!(
        serde_json::to_value(&e).unwrap(),
        json!({"error": "invalid_scope", "error_description": "invalid scope \"admin\""})
    );
    let e = ErrorResponse::from_error(&Error::Replayed).unwrap();
    assert_eq!(serde_json::to_value(&e).unwrap()["error"], "invalid_client");
    assert_eq!(ErrorResponse::from_error(&Error::Key("x")), None);
    let e = ErrorResponse::from_error(&Error::UnsupportedGrantType).unwrap();
    assert_eq!(
        serde_json::to_value(&e).unwrap()["error"],
        "unsupported_grant_type"
    );
}

#[test]
fn introspection_answers_active_or_nothing() {
    assert_eq!(
        serde_json::to_value(IntrospectionResponse::inactive()).unwrap(),
        json!({"active": false})
    );
    let mut c = claims();
    c.cert_thumbprint = Some(tollgate_oauth::CertThumbprint([0; 32]));
    let r = IntrospectionResponse::active(&c, ISS, AUD);
    assert_eq!(
        serde_json::to_value(&r).unwrap(),
        json!({
            "active": true, "scope": "read write", "client_id": c.client_id, "token_type": "Bearer",
            "exp": c.expires_at.unix_timestamp(), "iat": c.issued_at.unix_timestamp(),
            "sub": c.client_id, "aud": AUD, "iss": ISS, "jti": c.jti,
            "cnf": {"x5t#S256": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
            "tg_app": c.app, "tg_org": c.org, "tg_mode": "live",
        })
    );
}

#[test]
fn revocation_requests_parse() {
    let r = RevocationRequest::parse("token=abc.def.ghi&token_type_hint=access_token").unwrap();
    assert_eq!(
        (r.token.as_str(), r.token_type_hint),
        ("abc.def.ghi", Some(TokenTypeHint::AccessToken))
    );
    let r = RevocationRequest::parse("token=x&token_type_hint=refresh_token").unwrap();
    assert_eq!(r.token_type_hint, Some(TokenTypeHint::RefreshToken));
    let r = RevocationRequest::parse("token=x&token_type_hint=id_token&extra=1").unwrap();
    assert_eq!(
        r.token_type_hint,
        Some(TokenTypeHint::Other("id_token".into()))
    );
    let r = RevocationRequest::parse("token=x%2By").unwrap();
    assert_eq!((r.token.as_str(), r.token_type_hint), ("x+y", None));
    for (body, e) in [
        ("", Error::InvalidRequest("token is required")),
        ("token=", Error::InvalidRequest("token is required")),
        (
            "token_type_hint=access_token",
            Error::InvalidRequest("token is required"),
        ),
        (
            "token=a&token=b",
            Error::InvalidRequest("a parameter is repeated"),
        ),
    ] {
        assert_eq!(RevocationRequest::parse(body).err(), Some(e), "{body}");
    }
}
