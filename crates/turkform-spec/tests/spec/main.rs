//! Integration tests of turkform-spec: the demo campaigns, the examples, the broken corpus.
//! One test binary for the whole crate (link time).

mod support;

mod api;
mod broken;
mod examples;
mod review;
mod workers;
