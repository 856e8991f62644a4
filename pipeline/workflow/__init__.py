"""Workflows: chains, groups and chords of tasks, tracked in the state store.

    from pipeline import workflow

    workflow_id = workflow.chain(workflow.signature("fetch", url=u), workflow.signature("summarise")).submit()
    workflow.group([workflow.signature("vectorize_document", document_id=d) for d in ids]).submit()
    workflow.chord(members, workflow.signature("report", to="ops")).submit()
    workflow.get(workflow_id)  # state, counts, percent, members, result
    workflow.cancel(workflow_id); workflow.retry(workflow_id)

* :mod:`.shapes` — the shapes, their JSON description and its validation;
* :mod:`.submission` — records first, then the first messages in bulk;
* :mod:`.follow_ups` — publishing what became due (a chain's next step, a chord's callback);
* :mod:`.operations` — get, cancel, retry.

How the counting stays exact under crashes is in :mod:`pipeline.state.workflows`.
"""

from __future__ import annotations

from typing import Any, Optional

from pipeline.workflow.shapes import (
    FAILURES, MAX_MEMBERS, POLICIES, PREVIOUS, RESULTS, Chain, Chord, Group, Signature, Workflow, chain, chord,
    from_description, group, signature,
)


def submit(shape: Workflow, **options: Any) -> str:
    """Enqueue *shape* (or call ``shape.submit()``); returns the workflow id."""
    from pipeline.workflow.submission import submit as _submit

    return _submit(shape, **options)


def get(workflow_id: str, *, offset: int = 0, limit: Optional[int] = None, engine=None) -> dict:
    from pipeline.workflow.operations import MEMBER_PAGE, get as _get

    return _get(workflow_id, offset=offset, limit=limit or MEMBER_PAGE, engine=engine)


def cancel(workflow_id: str, *, engine=None) -> dict:
    from pipeline.workflow.operations import cancel as _cancel

    return _cancel(workflow_id, engine=engine)


def retry(workflow_id: str, *, engine=None) -> dict:
    from pipeline.workflow.operations import retry as _retry

    return _retry(workflow_id, engine=engine)


__all__ = [
    "FAILURES", "MAX_MEMBERS", "POLICIES", "PREVIOUS", "RESULTS", "Chain", "Chord", "Group", "Signature", "Workflow",
    "cancel", "chain", "chord", "from_description", "get", "group", "retry", "signature", "submit",
]
