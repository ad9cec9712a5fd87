//! Contract tests: the simulator driven through the real aws-sdk-mturk client over HTTP (and
//! through boto3 and the AWS CLI in `interop`). One binary for link speed.

mod support;

mod answers;
mod auth_and_wire;
mod faults;
mod hits;
mod interop;
mod lifecycle;
mod persistence;
mod qualifications;
mod worker_site;
mod workers_and_misc;
