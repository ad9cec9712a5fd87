//! turkform-sim
