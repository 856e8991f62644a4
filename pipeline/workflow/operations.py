"""Looking at, cancelling and retrying a workflow."""

from __future__ import annotations

from typing import Any, Optional

from pipeline.engine import Engine, get_engine
from pipeline.errors import InvalidTransition, WorkflowNotFound
from pipeline.state import FINAL_STATES, NewTask, exception_result, new_task_ids
from pipeline.follow_ups import FollowUpPublisher
from pipeline.owners import Owner

#: Members shown per page by :func:`get`.
MEMBER_PAGE = 100


def get(workflow_id: str, *, offset: int = 0, limit: int = MEMBER_PAGE, engine: Optional[Engine] = None) -> dict[str, Any]:
    """The workflow's state, counts, progress and result, with one page of its tasks and their states."""
    engine = engine or get_engine()
    record = engine.store.get_workflow(workflow_id)
    if record is None:
        raise WorkflowNotFound(f"no workflow {workflow_id!r} (never submitted, or expired)")
    total = record["total"]
    finished = record["succeeded"] + record["failed"] + record["cancelled"]
    out: dict[str, Any] = {
        "workflow_id": workflow_id,
        "kind": record["kind"],
        "state": record["state"],
        "name": record.get("name"),
        "submitted_by": record.get("submitted_by"),
        "user_id": record.get("user_id"),
        "tenant_id": record.get("tenant_id"),
        "created_at": record["created_at"],
        "finished_at": record.get("finished_at"),
        "total": total,
        "counts": {"pending": total - finished, "succeeded": record["succeeded"], "failed": record["failed"],
                   "cancelled": record["cancelled"]},
        "percent": round(100.0 * finished / total, 2) if total else 100.0,
        "retries": record["retries"],
    }
    if record["kind"] == "chord":
        out["on_failure"] = record.get("policy")
        out["callback_id"] = record.get("callback")
    if "cancel_requested" in record:
        out["cancel_requested"] = record["cancel_requested"]
    out["result"] = _result(engine, record)
    ids = engine.store.workflow_task_ids(workflow_id, offset, min(total, offset + limit))
    records = engine.store.get_many([i for i in ids if i])
    by_id = {r["task_id"]: r for r in records if r}
    out["members"] = [_member(offset + i, task_id, by_id.get(task_id)) for i, task_id in enumerate(ids)]
    out["members_page"] = {"offset": offset, "limit": limit, "total": total}
    return out


def _member(position: int, task_id: Optional[str], record: Optional[dict]) -> dict[str, Any]:
    member: dict[str, Any] = {"index": position, "task_id": task_id, "state": (record or {}).get("state", "EXPIRED")}
    if record:
        member["actor"] = record["actor"]
        for name in ("progress", "error", "finished_at"):
            if name in record:
                member[name] = record[name]
        if record.get("skipped"):
            member["skipped"] = True
    return member


def _result(engine: Engine, record: dict) -> Any:
    """A chain's last step's result, a chord's callback's; a group's member results only once it is final."""
    if record["state"] != "SUCCESS":
        return None
    if record["kind"] == "group":
        if record["total"] > MEMBER_PAGE * 10:
            return None  # too large to show whole: read the members' results page by page
        return engine.store.workflow_results(record["workflow_id"], list(range(record["total"])))
    return engine.store.workflow_results(record["workflow_id"], [record["total"] - 1])[0]


def cancel(workflow_id: str, *, engine: Optional[Engine] = None) -> dict[str, Any]:
    """Cancel every task of the workflow that has not finished; follow-ups will not run."""
    engine = engine or get_engine()
    previous = engine.store.cancel_workflow(workflow_id)
    if previous == "MISSING":
        raise WorkflowNotFound(f"no workflow {workflow_id!r}")
    if previous != "RUNNING":
        raise InvalidTransition(f"workflow already finished as {previous}", previous)
    ids = [i for i in engine.store.workflow_task_ids(workflow_id) if i]
    cancelled = interrupting = 0
    value = exception_result("TaskCancelled", "cancelled before it ran")
    for start in range(0, len(ids), 1000):
        records = engine.store.get_many(ids[start:start + 1000])
        for record in records:
            if record is None or record["state"] in FINAL_STATES or record["state"] == "WAITING":
                continue
            outcome, _ = engine.store.cancel(record["task_id"], engine.result_key(record), value)
            cancelled += outcome == "CANCELLED"
            interrupting += outcome == "INTERRUPTING"
    return {"workflow_id": workflow_id, "state": "CANCELLED", "cancelled": cancelled, "interrupting": interrupting}


def retry(workflow_id: str, *, engine: Optional[Engine] = None) -> dict[str, Any]:
    """Re-run the tasks that failed or were cancelled (not the skipped ones), each as a new task in its
    place, and re-arm what follows them. Returns the new task ids by position."""
    engine = engine or get_engine()
    record = engine.store.get_workflow(workflow_id)
    if record is None:
        raise WorkflowNotFound(f"no workflow {workflow_id!r}")
    if record["state"] in ("RUNNING", "SUCCESS"):
        raise InvalidTransition(f"workflow is {record['state']}; only a FAILURE or CANCELLED workflow can be retried",
                                record["state"])
    ids = engine.store.workflow_task_ids(workflow_id)
    failed = []
    for start in range(0, len(ids), 1000):
        for record_ in engine.store.get_many(ids[start:start + 1000]):
            if record_ and record_["state"] in ("FAILURE", "CANCELLED") and not record_.get("skipped"):
                failed.append(record_)
    if not failed:
        raise InvalidTransition("no task of the workflow failed or was cancelled (a member's record expired?)",
                                record["state"])
    replacements = []
    for old, new_id in zip(failed, (engine.store.keys.id_beside(i, workflow_id) for i in new_task_ids(len(failed)))):
        payload = engine.store.payload(old["task_id"]) or {"args": [], "kwargs": {}}
        task = NewTask(task_id=new_id, actor=old["actor"], queue=old["queue"], priority=old["priority"],
                       max_retries=old["max_retries"], args=[], kwargs=payload["kwargs"], retry_of=old["task_id"],
                       workflow=workflow_id, wf_index=old["wf_index"], owner=Owner.of_record(old))
        replacements.append((old["wf_index"], old["task_id"], task))
    status, due = engine.store.retry_workflow(workflow_id, replacements)
    if status != "RETRIED":
        raise InvalidTransition(f"workflow changed meanwhile ({status}); look again", status)
    FollowUpPublisher(engine.store, engine.broker)(due)  # if RabbitMQ is away, the sweep publishes them
    return {"workflow_id": workflow_id, "state": "RUNNING",
            "retried": {str(index): task.task_id for index, _, task in replacements}}
