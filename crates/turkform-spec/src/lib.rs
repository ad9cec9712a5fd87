//! turkform-spec
