"""The workflow page: counts, progress, its tasks linked both ways, cancel and retry buttons that work."""

from __future__ import annotations

from pipeline import workflow
from pipeline.workflow import signature as sig
from tests.conftest import wait_until


def test_workflow_page_shows_progress_and_tasks_and_links_back_from_each_task(as_role, engine, start_worker):
    start_worker()
    admin = as_role("admin")
    workflow_id = workflow.chord([sig("echo", value=i) for i in range(3)], sig("collect")).submit(
        engine=engine, name="page test")
    wait_until(lambda: workflow.get(workflow_id, engine=engine)["state"] == "SUCCESS")
    page = admin.get(f"/dashboard/workflows/{workflow_id}")
    assert page.status_code == 200
    assert "page test" in page.text and 'value="100.0"' in page.text and "4 of 4 finished" in page.text
    members = workflow.get(workflow_id, engine=engine)["members"]
    for member in members:
        assert f'href="/dashboard/tasks/{member["task_id"]}"' in page.text
    task_page = admin.get(f"/dashboard/tasks/{members[0]['task_id']}")
    assert f'href="/dashboard/workflows/{workflow_id}"' in task_page.text
    assert "Retry as a new task" not in task_page.text
    assert admin.get("/dashboard/workflows/00000000-0000-0000-0000-000000000000").status_code == 404


def test_cancel_and_retry_buttons_act_on_the_whole_workflow(as_role, engine, start_worker):
    admin = as_role("admin")
    workflow_id = workflow.group([sig("echo", value=i) for i in range(3)]).submit(engine=engine)
    page = admin.get(f"/dashboard/workflows/{workflow_id}")
    assert 'data-action="cancel"' in page.text and 'data-action="retry"' not in page.text
    cancelled = admin.post(f"/dashboard/workflows/{workflow_id}/cancel")
    assert cancelled.status_code == 303
    page = admin.get(f"/dashboard/workflows/{workflow_id}")
    assert "CANCELLED" in page.text and 'data-action="retry"' in page.text
    assert admin.post(f"/dashboard/workflows/{workflow_id}/cancel").status_code == 409
    assert as_role("read").post(f"/dashboard/workflows/{workflow_id}/retry").status_code == 403
    assert admin.post(f"/dashboard/workflows/{workflow_id}/retry").status_code == 303
    start_worker()
    wait_until(lambda: workflow.get(workflow_id, engine=engine)["state"] == "SUCCESS")
