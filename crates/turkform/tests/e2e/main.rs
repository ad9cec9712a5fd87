//! End-to-end tests: the real `turkform` binary against a simulator on 127.0.0.1:0, asserting on
//! the simulator's own view (`/_sim/stats`, ListHITs), not only on what turkform says.

mod common;

mod aggregate_e2e;
mod apply_e2e;
mod cli_trust_e2e;
mod goal_e2e;
mod pending_e2e;
mod plan_e2e;
mod postgres_e2e;
mod preview_e2e;
mod report_e2e;
mod results_e2e;
mod review_e2e;
mod safety_e2e;
mod surface;
mod transcripts;
mod trust_e2e;
mod workers_e2e;
