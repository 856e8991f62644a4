from tests.conftest import wait_for_state
from pipeline import client


def test_submitted_task_runs_to_success_with_result(engine, start_worker):
    start_worker()
    task_id = client.submit("echo", kwargs={"value": [1, "二"]})
    record = wait_for_state(engine, task_id, "SUCCESS")
    assert record["result"] == {"value": [1, "二"], "had_password": False}
