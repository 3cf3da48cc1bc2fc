#!/usr/bin/env python3
"""Writes pyjwt.json: tokens signed by PyJWT (an independent JWS implementation) with the
public keys that verify them, for the interop tests in tests/it/interop.rs. Run once and
commit the output; the tests need no Python. Fresh keys each run (the private keys are
thrown away), so rerunning changes every value.

    python3 -m venv /tmp/v && /tmp/v/bin/pip install pyjwt cryptography
    /tmp/v/bin/python gen_pyjwt.py > pyjwt.json
"""
import json
import sys
import uuid

import cryptography
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from jwt.algorithms import ECAlgorithm, OKPAlgorithm

ISS = "https://market.example"
AUD = "https://gw.example"
TOKEN_ENDPOINT = ISS + "/oauth/token"
IAT = 1767225600  # 2026-01-01T00:00:00Z
CLIENT = "0199a5d0-0000-7000-8000-00000000c11e"
APP = "0199a5d0-0000-7000-8000-000000000a99"
ORG = "0199a5d0-0000-7000-8000-000000000049"


def jwk(alg, key, kid):
    j = json.loads(alg.to_jwk(key.public_key()))
    j["kid"] = kid
    return j


def access_claims(jti, cnf=None):
    c = {
        "iss": ISS, "sub": CLIENT, "aud": AUD, "iat": IAT, "exp": IAT + 300,
        "jti": jti, "client_id": CLIENT, "scope": "read write",
        "tg_app": APP, "tg_org": ORG, "tg_mode": "live",
    }
    if cnf:
        c["cnf"] = {"x5t#S256": cnf}
    return c


ed = ed25519.Ed25519PrivateKey.generate()
p256 = ec.generate_private_key(ec.SECP256R1())
client_key = ec.generate_private_key(ec.SECP256R1())

out = {
    "generator": f"PyJWT {jwt.__version__}, cryptography {cryptography.__version__}",
    "iss": ISS, "aud": AUD, "token_endpoint": TOKEN_ENDPOINT, "iat": IAT,
    "client_id": CLIENT, "app": APP, "org": ORG,
    "jwks": {"keys": [jwk(OKPAlgorithm, ed, "py-ed25519"), jwk(ECAlgorithm, p256, "py-p256")]},
    "access_eddsa": jwt.encode(access_claims("0199a5d0-0000-7000-8000-0000000000e1"), ed,
                               algorithm="EdDSA", headers={"typ": "at+jwt", "kid": "py-ed25519"}),
    "access_es256": jwt.encode(
        access_claims("0199a5d0-0000-7000-8000-0000000000e2",
                      cnf="n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg"),
        p256, algorithm="ES256", headers={"typ": "at+jwt", "kid": "py-p256"}),
    "client_jwks": {"keys": [jwk(ECAlgorithm, client_key, "client-1")]},
    # PyJWT's defaults: typ "JWT", aud as a list.
    "client_assertion": jwt.encode(
        {"iss": CLIENT, "sub": CLIENT, "aud": [TOKEN_ENDPOINT], "iat": IAT, "exp": IAT + 60,
         "jti": str(uuid.uuid4())},
        client_key, algorithm="ES256", headers={"kid": "client-1"}),
}
json.dump(out, sys.stdout, indent=2)
sys.stdout.write("\n")
