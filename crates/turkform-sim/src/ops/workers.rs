//! Workers: blocks and messages.

use super::*;

pub(super) fn create_worker_block(w: &mut World, input: &Input<'_>) -> ApiResult<Value> {
    let worker = input.worker_id_req("WorkerId")?;
    let reason = input.str_req("Reason")?;
    if reason.trim().is_empty() {
        return Err(ApiError::invalid("Reason must not be empty."));
    }
    let seq = w.next_seq();
    w.blocks.insert(
        worker.to_owned(),
        Block {
            worker_id: worker.to_owned(),
            reason: reason.to_owned(),
            seq,
        },
    );
    w.touch(Key::Block(worker.to_owned()));
    Ok(json!({}))
}

pub(super) fn delete_worker_block(w: &mut World, input: &Input<'_>) -> ApiResult<Value> {
    let worker = input.worker_id_req("WorkerId")?;
    input.str_opt("Reason")?;
    if w.blocks.remove(worker).is_some() {
        w.touch(Key::Block(worker.to_owned()));
    }
    Ok(json!({}))
}

pub(super) fn list_worker_blocks(w: &mut World, input: &Input<'_>) -> ApiResult<Value> {
    let mut blocks: Vec<&Block> = w.blocks.values().collect();
    blocks.sort_by_key(|b| b.seq);
    let items: Vec<(u64, Value)> = blocks
        .into_iter()
        .map(|b| {
            (
                b.seq,
                json!({ "WorkerId": b.worker_id, "Reason": b.reason }),
            )
        })
        .collect();
    paginate(input, "blocks", "WorkerBlocks", items.into_iter())
}

pub(super) fn notify_workers(w: &mut World, input: &Input<'_>) -> ApiResult<Value> {
    let subject = input.str_req("Subject")?;
    let message = input.str_req("MessageText")?;
    let workers = input
        .list_opt("WorkerIds")?
        .ok_or_else(|| ApiError::constraint("WorkerIds", "null", "Member must not be null"))?;
    let n = subject.chars().count();
    if n == 0 || n > 200 {
        return Err(ApiError::invalid(
            "Subject must be between 1 and 200 characters long.",
        ));
    }
    let n = message.chars().count();
    if n == 0 || n > 4096 {
        return Err(ApiError::invalid(
            "MessageText must be between 1 and 4096 characters long.",
        ));
    }
    if workers.is_empty() || workers.len() > 100 {
        return Err(ApiError::invalid(format!(
            "WorkerIds must name between 1 and 100 workers; {} were given.",
            workers.len()
        )));
    }
    let mut failures = Vec::new();
    for v in workers {
        let Some(id) = v.as_str() else {
            return Err(ApiError::serialization("WorkerIds must hold strings"));
        };
        wire::check_worker_id("WorkerIds", id)?;
        // MTurk only lets you message workers who have worked for you.
        if !w.assignments.values().any(|a| a.worker_id == id) {
            failures.push(json!({
                "NotifyWorkersFailureCode": "HardFailure",
                "NotifyWorkersFailureMessage": format!("Cannot send notification because worker {id} has not submitted work for you."),
                "WorkerId": id,
            }));
        }
    }
    Ok(json!({ "NotifyWorkersFailureStatuses": failures }))
}
