//! Field paths and their lines in a sheet's text: re-exported from
//! [`tollgate_core::locate`], plus the bridge from `serde_path_to_error` paths.

pub use tollgate_core::locate::{FieldPath, Format, Seg, line_of_offset, locate};

/// The field path of a deserialization error's `serde_path_to_error` path.
pub fn from_serde(path: &serde_path_to_error::Path) -> FieldPath {
    let mut segs = Vec::new();
    for s in path.iter() {
        match s {
            serde_path_to_error::Segment::Seq { index } => segs.push(Seg::Index(*index)),
            serde_path_to_error::Segment::Map { key } => segs.push(Seg::Key(key.clone())),
            serde_path_to_error::Segment::Enum { variant } => {
                segs.push(Seg::Key(variant.clone()));
            }
            serde_path_to_error::Segment::Unknown => {}
        }
    }
    FieldPath(segs)
}
