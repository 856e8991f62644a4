"""The dashboard in real headless Chromium, against gunicorn and a real worker.

Screenshots go to test-artifacts/ (gitignored); ``docs/dashboard_screenshot.py``
copies the overview one to docs/.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from pipeline import client
from tests.conftest import wait_for_state, wait_until
from tests.dashboard.conftest import log_in, screenshot

pytestmark = pytest.mark.timeout(150)


def canvas_has_ink(tab, selector: str) -> bool:
    """True when something was drawn on the canvas (any non-transparent pixel)."""
    return tab.eval_on_selector(selector, """canvas => {
        const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) return true;
        return false;
    }""")


def test_every_page_loads_and_the_overview_refreshes_itself(page, engine, start_worker):
    start_worker()
    secret = "hunter2-browser"
    done = [client.submit("echo", kwargs={"value": f"v{i}", "password": secret}) for i in range(6)]
    failed = client.submit("always_fails", kwargs={"message": "browser boom"})
    for task_id in done:
        wait_for_state(engine, task_id, "SUCCESS")
    wait_for_state(engine, failed, "FAILURE")

    log_in(page, "read")
    expect(page.locator('[data-bind="states|SUCCESS"]')).to_have_text("6")
    wait_until(lambda: canvas_has_ink(page, "#chart-throughput") and canvas_has_ink(page, "#chart-failures"),
               10, message="the charts to be drawn")
    more = client.submit("echo", kwargs={"value": "late"})
    wait_for_state(engine, more, "SUCCESS")
    expect(page.locator('[data-bind="states|SUCCESS"]')).to_have_text("7", timeout=12_000)  # no reload
    screenshot(page, "dashboard-overview.png")

    for path, heading in (("/dashboard/tasks", "Tasks"), ("/dashboard/queues", "Queues"),
                          ("/dashboard/workers", "Workers"), ("/dashboard/schedules", "Schedules")):
        page.goto(path)
        expect(page.locator("h1")).to_contain_text(heading)
    page.goto("/dashboard/tasks?state=FAILURE")
    page.click(f'a[href="/dashboard/tasks/{failed}"]')
    expect(page.locator(".problem")).to_contain_text("browser boom")
    expect(page.locator("pre.traceback")).to_have_count(0)  # tracebacks are for tasks:control only
    screenshot(page, "dashboard-task-failed.png")
    page.goto(f"/dashboard/tasks/{done[0]}")
    expect(page.locator("h1")).to_contain_text("echo")
    assert secret not in page.content()
    screenshot(page, "dashboard-task.png")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.goto("/dashboard/")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), "the overview scrolls sideways on a phone"
    screenshot(page, "dashboard-overview-phone.png")


def test_admin_cancels_a_running_task_by_clicking(page, engine, start_worker):
    start_worker()
    task_id = client.submit("spin", kwargs={"seconds": 30})
    wait_for_state(engine, task_id, "STARTED")
    log_in(page, "admin")
    page.goto(f"/dashboard/tasks/{task_id}")
    expect(page.locator('[data-task-field="state"]')).to_have_text("STARTED")
    page.click('[data-action="cancel"]')
    expect(page.locator('[data-task-field="state"]')).to_have_text("CANCELLED", timeout=20_000)
    assert engine.store.get(task_id)["state"] == "CANCELLED"


def test_admin_retries_a_failed_task_by_clicking_and_watches_it_fail_again(page, engine, start_worker):
    start_worker()
    failed = client.submit("always_fails", kwargs={"message": "again"})
    wait_for_state(engine, failed, "FAILURE")
    log_in(page, "admin")
    page.goto(f"/dashboard/tasks/{failed}")
    page.click('[data-action="retry"]')
    expect(page.locator(".notice")).to_contain_text("retry")
    expect(page.locator(f'a[href="/dashboard/tasks/{failed}"]')).to_be_visible()  # "Retry of" link
    new_id = page.url.rsplit("/", 1)[1].split("?")[0]
    assert engine.store.get(new_id)["retry_of"] == failed
    expect(page.locator('[data-task-field="state"]')).to_have_text("FAILURE", timeout=20_000)  # the page follows it


def test_worker_appears_and_disappears_without_a_reload(page, engine, start_worker):
    log_in(page, "read")
    page.goto("/dashboard/workers")
    expect(page.locator(".empty")).to_contain_text("No worker is online")
    worker = start_worker("--processes", "1")
    pid = engine.workers.list()[0]["pid"]
    expect(page.locator("td", has_text=str(pid)).first).to_be_visible(timeout=10_000)
    worker.stop()
    expect(page.locator(".empty")).to_contain_text("No worker is online", timeout=15_000)


def test_workflow_page_shows_progress_and_an_admin_cancels_it_by_clicking(page, engine, start_worker):
    from pipeline import workflow
    from pipeline.workflow import signature

    start_worker("--threads", "4")  # every member starts at once, whatever each process prefetched
    done = workflow.chord([signature("echo", value=i) for i in range(3)], signature("collect")).submit(name="done chord")
    slow = workflow.group([signature("cooperative", seconds=20) for _ in range(3)]
                          + [signature("echo", value=i) for i in range(3)]).submit(name="slow group")
    wait_until(lambda: workflow.get(done)["state"] == "SUCCESS")
    wait_until(lambda: workflow.get(slow)["counts"]["succeeded"] == 3, message="the fast members")
    log_in(page, "admin")
    page.goto(f"/dashboard/workflows/{done}")
    expect(page.locator("h1")).to_contain_text("done chord")
    expect(page.locator("progress")).to_have_attribute("value", "100.0")
    page.goto(f"/dashboard/workflows/{slow}")
    expect(page.locator('[data-count="succeeded"]')).to_have_text("3")
    screenshot(page, "dashboard-workflow.png")
    page.click('button[data-action="cancel"]')
    expect(page.locator("h1")).to_contain_text("CANCELLED")
    member = workflow.get(slow)["members"][0]["task_id"]
    page.goto(f"/dashboard/tasks/{member}")
    page.click('a[data-link="workflow"]')
    expect(page).to_have_url(f"{page.url.split('/dashboard')[0]}/dashboard/workflows/{slow}")


@pytest.fixture
def shanghai_page(chromium, server):
    """A tab whose browser runs in Asia/Shanghai (UTC+8, no daylight saving)."""
    context = chromium.new_context(base_url=server.url, viewport={"width": 1280, "height": 860},
                                   timezone_id="Asia/Shanghai")
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def test_times_are_in_the_browsers_zone_with_utc_on_hover_and_a_finished_bar_shows_how_it_ended(
        shanghai_page, engine, start_worker):
    from datetime import datetime, timedelta, timezone

    start_worker()
    done = client.submit("cooperative", kwargs={"seconds": 0.5})
    cancelled = client.submit("cooperative", kwargs={"seconds": 30})
    record = wait_for_state(engine, done, "SUCCESS")
    wait_until(lambda: (engine.store.get(cancelled) or {}).get("progress"), 20, message="progress of the long task")
    client.cancel(cancelled)
    wait_for_state(engine, cancelled, "CANCELLED")
    log_in(shanghai_page, "read")

    shanghai_page.goto(f"/dashboard/tasks/{done}")
    submitted = shanghai_page.locator("dt:text('Submitted') + dd time")
    local = datetime.fromtimestamp(record["enqueued_at"], timezone(timedelta(hours=8))).strftime("%Y-%m-%d %H:%M:%S")
    utc = datetime.fromtimestamp(record["enqueued_at"], timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    expect(submitted).to_have_text(local)
    assert f"{utc} UTC" in submitted.get_attribute("title") and "Asia/Shanghai" in submitted.get_attribute("title")
    bar = shanghai_page.locator('progress[data-task-field="progress"]')
    assert bar.get_attribute("value") == "100" and "progress-success" in bar.get_attribute("class")
    expect(shanghai_page.locator('[data-task-field="progress_text"]')).to_have_text("SUCCESS")

    shanghai_page.goto(f"/dashboard/tasks/{cancelled}")
    text = shanghai_page.locator('[data-task-field="progress_text"]').text_content()
    assert text.startswith("CANCELLED at ") and text.endswith("%") and "step" not in text
    assert "progress-cancelled" in shanghai_page.locator('progress[data-task-field="progress"]').get_attribute("class")


def test_chinese_text_renders_with_a_cjk_font_in_screenshots(page, engine):
    """Without a CJK font every Han character is the same empty box: two different ones would look alike."""
    task_id = client.submit("echo", kwargs={"value": "知识库更新完成"})
    log_in(page, "read")
    page.goto(f"/dashboard/tasks/{task_id}")
    expect(page.locator("pre.json").first).to_contain_text("知识库更新完成")
    page.evaluate("""() => {
        for (const [id, text] of [["glyph-a", "知"], ["glyph-b", "库"]]) {
            const span = document.createElement("span");
            span.id = id; span.textContent = text; span.style.fontSize = "48px";
            document.body.prepend(span);
        }
    }""")
    first, second = page.locator("#glyph-a").screenshot(), page.locator("#glyph-b").screenshot()
    assert first != second, "Chinese characters render as identical boxes: install a CJK font (make test-deps)"
    screenshot(page, "dashboard-task-chinese.png")


def test_api_docs_work_before_a_token_and_try_it_out_sends_the_one_given_to_authorize(page):
    from tests.dashboard.conftest import TOKENS

    page.goto("/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("claw-pipeline API")  # no token yet
    expect(page.locator("#token-bar")).to_be_hidden()
    operation = page.locator("#operations-tasks-getTaskStats")
    expect(operation).to_be_visible()
    page.click(".swagger-ui .auth-wrapper .authorize")
    page.fill(".auth-container input", TOKENS["read"])
    page.click(".auth-btn-wrapper .authorize")
    page.click(".auth-btn-wrapper .btn-done")
    operation.locator(".opblock-summary").click()
    operation.locator(".try-out__btn").click()
    operation.locator(".execute").click()
    expect(operation.locator(".live-responses-table tbody .response-col_status").first).to_have_text("200", timeout=15_000)
