#!/usr/bin/env python3
"""Verifies tokens and the JWKS written by the `export_for_pyjwt` test with PyJWT: the
reverse interop check, run by hand (see tests/it/interop.rs). Exits non-zero on failure."""
import json
import sys

import jwt

doc = json.load(open(sys.argv[1]))
keys = {k["kid"]: jwt.PyJWK(k) for k in doc["jwks"]["keys"]}
for token in doc["tokens"]:
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt", header
    claims = jwt.decode(
        token, keys[header["kid"]], algorithms=["EdDSA", "ES256"], audience=doc["aud"],
        issuer=doc["iss"], options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["sub"] == claims["client_id"] == doc["client_id"], claims
    print(f"ok {header['alg']} kid={header['kid']} scope={claims['scope']!r}")
