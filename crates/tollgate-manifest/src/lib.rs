//! tollgate-manifest
