//! `goal = "approved"` through the executor: the assignment that replaces a rejected answer is
//! added exactly once, even when the answer to CreateAdditionalAssignmentsForHIT is lost and the
//! next run resends it (same token: target, HIT and the count it brings the HIT to).

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goal_addition_whose_answer_was_lost_is_added_once_by_the_next_run() {
    let mut h = Harness::new(SimConfig::default()).await;
    let mut c = campaign("goal", 2, 10, 2);
    c.review.goal = turkform_model::ReviewGoal::Approved;
    h.converge(&desired(vec![c.clone()])).await;
    let first = work_and_record(&mut h, "AWORKERONE", "cat").await;
    work_and_record(&mut h, "AWORKERTWO", "cat").await;
    c.review.decisions = vec![turkform_model::Decision {
        assignment_id: first[0].clone(),
        verdict: turkform_model::Verdict::Reject {
            feedback: "Wrong label".into(),
        },
        file: "decisions.csv".into(),
        line: 2,
    }];
    let d = desired(vec![c]);
    let (plan, report) = plan_and_review(&mut h, &d).await;
    assert_eq!(
        (plan.summary.reject, report.failed.len()),
        (1, 0),
        "{report:?}"
    );

    // The next plan replaces the rejected answer; its answer is lost on the way back.
    h.restart(SimConfig {
        drop_rate: 1.0,
        ..SimConfig::default()
    })
    .await;
    let plan = h.plan(&d);
    assert_eq!(plan.summary.add_assignments, 1, "{plan:#?}");
    let mut options = h.options();
    options.max_retries = 0;
    turkform_apply::apply(&plan, &h.api, &mut h.store, &h.clock, &NoReporter, &options)
        .await
        .unwrap();
    assert_eq!(h.store.pending_intents().unwrap().len(), 1);
    h.restart(SimConfig::default()).await;
    let balance = h.balance().await;

    // The next run resends it with the same token: MTurk has it already, nothing is added.
    let (plan, report) = h.converge(&d).await;
    assert!(!plan.has_changes(), "{plan:#?}");
    assert!(report.failed.is_empty(), "{report:?}");
    let mut max: Vec<u32> = h
        .remote_hits()
        .await
        .iter()
        .map(|r| r.max_assignments)
        .collect();
    max.sort_unstable();
    assert_eq!(max, [2, 3], "one assignment added, once");
    assert_eq!(h.balance().await, balance, "nothing more was paid");
    assert!(h.store.pending_intents().unwrap().is_empty());
    let mutating = h.mutating_requests().await;
    let (plan, _) = h.converge(&d).await;
    assert!(!plan.has_changes(), "{plan:#?}");
    assert_eq!(h.mutating_requests().await, mutating);
}
