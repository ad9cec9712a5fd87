//! turkform-apply
