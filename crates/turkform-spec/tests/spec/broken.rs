//! The broken corpus: one deliberately wrong campaign per rule.
