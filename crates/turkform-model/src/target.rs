//! Where HITs go. State is partitioned by target, and some qualification ids differ per target.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An MTurk environment turkform can manage HITs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// The local simulator (embedded, or any `--endpoint-url`).
    Sim,
    /// MTurk's requester sandbox: no real money.
    Sandbox,
    /// Real MTurk: real money and real workers.
    Production,
}

impl Target {
    pub const ALL: [Target; 3] = [Target::Sim, Target::Sandbox, Target::Production];

    pub fn as_str(self) -> &'static str {
        match self {
            Target::Sim => "sim",
            Target::Sandbox => "sandbox",
            Target::Production => "production",
        }
    }

    /// The default endpoint; `None` for the simulator, whose address is only known once it runs.
    pub fn default_endpoint(self) -> Option<&'static str> {
        match self {
            Target::Sim => None,
            Target::Sandbox => Some("https://mturk-requester-sandbox.us-east-1.amazonaws.com"),
            Target::Production => Some("https://mturk-requester.us-east-1.amazonaws.com"),
        }
    }

    /// The Masters qualification type id. It differs between sandbox and production; the
    /// simulator, like the sandbox, uses the sandbox id.
    pub fn masters_id(self) -> &'static str {
        match self {
            Target::Production => crate::qualification::system::MASTERS_PRODUCTION,
            Target::Sim | Target::Sandbox => crate::qualification::system::MASTERS_SANDBOX,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sim" => Ok(Target::Sim),
            "sandbox" => Ok(Target::Sandbox),
            "production" => Ok(Target::Production),
            other => Err(format!(
                "unknown target `{other}`: expected one of `sim`, `sandbox`, `production`"
            )),
        }
    }
}
