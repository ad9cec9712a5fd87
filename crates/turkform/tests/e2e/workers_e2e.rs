//! Workers as code through the CLI: `[workers] blocks` in `turkform.toml`, a block made outside
//! turkform with the SDK, `turkform refresh` naming it, and the human plan grouping the blocks.
//! Ground truth is the simulator's ListWorkerBlocks.

use std::collections::BTreeMap;

use crate::common::{CampaignOptions, Project, Sim, assert_exit, stderr, stdout};

fn blocks(sim: &Sim) -> BTreeMap<String, String> {
    let client = sim.sdk();
    sim.block_on(async move {
        client
            .list_worker_blocks()
            .max_results(100)
            .send()
            .await
            .expect("ListWorkerBlocks")
            .worker_blocks
            .unwrap_or_default()
            .into_iter()
            .map(|b| {
                (
                    b.worker_id.unwrap_or_default(),
                    b.reason.unwrap_or_default(),
                )
            })
            .collect()
    })
}

#[test]
fn the_blocks_file_of_turkform_toml_blocks_and_unblocks_and_leaves_outside_blocks_alone() {
    let sim = Sim::plain();
    let project = Project::new();
    project.campaign("street", 1, &CampaignOptions::default());
    project.write(
        "turkform.toml",
        "target = \"sim\"\n\n[workers]\nblocks = \"workers/blocked.csv\"\n",
    );
    project.write(
        "workers/blocked.csv",
        "WorkerId,Reason\nASPAM1,copies answers\nASPAM2,copies answers\n",
    );
    let plan = project.run(&sim, &["plan"]);
    assert_exit(&plan, 0);
    assert!(
        stdout(&plan).contains("block 2 workers (blocks file workers/blocked.csv)"),
        "{}",
        stdout(&plan)
    );
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    assert_eq!(
        blocks(&sim),
        BTreeMap::from([
            ("ASPAM1".to_owned(), "copies answers".to_owned()),
            ("ASPAM2".to_owned(), "copies answers".to_owned()),
        ])
    );

    // Made outside turkform, with the SDK.
    let client = sim.sdk();
    sim.block_on(async move {
        client
            .create_worker_block()
            .worker_id("AHAND")
            .reason("blocked in the web UI")
            .send()
            .await
            .expect("CreateWorkerBlock")
    });
    let refresh = project.run(&sim, &["refresh"]);
    assert_exit(&refresh, 0);
    assert!(
        stderr(&refresh).contains("AHAND blocked outside turkform"),
        "{}",
        stderr(&refresh)
    );

    // Removing a row unblocks that worker, and only that one.
    project.write(
        "workers/blocked.csv",
        "WorkerId,Reason\nASPAM2,copies answers\n",
    );
    let mutating = sim.mutating_calls();
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    assert_eq!(sim.mutating_calls(), mutating + 1, "one DeleteWorkerBlock");
    assert_eq!(
        blocks(&sim),
        BTreeMap::from([
            ("AHAND".to_owned(), "blocked in the web UI".to_owned()),
            ("ASPAM2".to_owned(), "copies answers".to_owned()),
        ])
    );

    // A bad row is an error at its line, before any call.
    project.write("workers/blocked.csv", "WorkerId,Reason\nASPAM2,\n");
    let bad = project.run(&sim, &["plan"]);
    assert_exit(&bad, 1);
    assert!(
        stderr(&bad).contains("workers/blocked.csv:2:1: error: a block row has an empty `Reason`"),
        "{}",
        stderr(&bad)
    );
}
