"""Workflows: chains, groups and chords of tasks, tracked in the state store.

    from pipeline import workflow

    workflow_id = workflow.chain(workflow.signature("fetch", url=u), workflow.signature("summarise")).submit()
    workflow.group([workflow.signature("vectorize_document", document_id=d) for d in ids]).submit()
    workflow.chord(members, workflow.signature("report", to="ops")).submit()
    workflow.get(workflow_id)  # state, counts, percent, members, result
    workflow.cancel(workflow_id); workflow.retry(workflow_id)

* :mod:`.shapes` — the shapes, their JSON description and its validation;
* :mod:`.submission` — records first, then the first messages in bulk;
* :mod:`.operations` — get, cancel, retry.

What became due (a chain's next step, a chord's callback) is published by :mod:`pipeline.follow_ups`;
how the counting stays exact under crashes is in :mod:`pipeline.state.workflows`.
"""

from __future__ import annotations

from pipeline.follow_ups import FAILURES, PREVIOUS, RESULTS
from pipeline.workflow.operations import cancel, get, retry
from pipeline.workflow.shapes import (
    MAX_MEMBERS, POLICIES, Chain, Chord, Group, Signature, Workflow, chain, chord, from_description, group, signature,
)
from pipeline.workflow.submission import submit

__all__ = [
    "FAILURES", "MAX_MEMBERS", "POLICIES", "PREVIOUS", "RESULTS", "Chain", "Chord", "Group", "Signature", "Workflow",
    "cancel", "chain", "chord", "from_description", "get", "group", "retry", "signature", "submit",
]
