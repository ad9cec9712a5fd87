//! turkform-state
