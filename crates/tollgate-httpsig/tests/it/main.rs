//! Integration tests of tollgate-httpsig: the RFC 9421 Appendix B vectors, sign/verify
//! properties, and the gateway verifier (policy, replay).

mod common;
mod props;
mod vectors;
mod verifier;
