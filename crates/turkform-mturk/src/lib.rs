//! turkform-mturk
