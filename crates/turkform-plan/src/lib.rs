//! turkform-plan
