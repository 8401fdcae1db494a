"""A designer in a real browser: log in, build a workflow, meet a validation error, fix it, publish.

Headless Chromium and chromedriver come from the distribution's packages
(`make browser`); Selenium is told where chromedriver is, so it never
downloads one. Set BROWSER_SCREENSHOTS=<dir> to keep screenshots of the
designer's page.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from role.models import Role
from role.services import role_sync
from role.tests.factories import role_data
from workflow.models import Workflow, WorkflowStatus
from workflow_api.testing.services import require_browser

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("browser")]

CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1800",
)
PASSWORD = "correct horse battery staple"


@pytest.fixture
def browser() -> Iterator:
    chromium, chromedriver = require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
        driver.implicitly_wait(0)
        try:
            yield driver
        finally:
            driver.quit()


@pytest.fixture
def roles() -> dict[str, Role]:
    for role_id, name in ((10, "Admin"), (12, "Asset Manager"), (14, "Ticket Coordinator")):
        role_sync(payload=role_data(role_id=role_id, name=name))
    return {role.name: role for role in Role.objects.all()}


class Designer:
    """The few gestures the test needs, each waiting for the page it leads to."""

    def __init__(self, driver, base_url: str) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import Select, WebDriverWait

        self.driver, self.base_url, self.by = driver, base_url, By
        self._select, self._wait = Select, WebDriverWait

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def field(self, name: str):
        return self.driver.find_element(self.by.NAME, name)

    def type(self, name: str, text: str) -> None:
        element = self.field(name)
        element.clear()
        element.send_keys(text)

    def choose(self, name: str, value: object) -> None:
        self._select(self.field(name)).select_by_value(str(value))

    def tick(self, name: str) -> None:
        box = self.field(name)
        if not box.is_selected():
            box.click()

    def press(self, css: str) -> None:
        """Click the (first) button the selector finds and wait until the next page has loaded.

        The old page is marked with a window variable, which a new page does
        not have. (Waiting for the old <html> element to go stale is racy:
        Chrome may answer "node does not belong to the document" instead.)
        """
        from selenium.common.exceptions import WebDriverException

        self.driver.execute_script("window.__leaving = true;")
        self.driver.find_element(self.by.CSS_SELECTOR, css).click()
        # While the page changes, a script may find no document to run in: try again.
        self._wait(self.driver, 10, ignored_exceptions=(WebDriverException,)).until(
            lambda driver: driver.execute_script(
                "return window.__leaving === undefined && document.readyState === 'complete';"
            )
        )

    def text_of(self, css: str) -> str:
        return self.driver.find_element(self.by.CSS_SELECTOR, css).text

    def has(self, css: str) -> bool:
        return bool(self.driver.find_elements(self.by.CSS_SELECTOR, css))

    def screenshot(self, name: str) -> None:
        folder = os.environ.get("BROWSER_SCREENSHOTS")
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            # The whole page, not only the window.
            height = self.driver.execute_script("return document.documentElement.scrollHeight")
            self.driver.set_window_size(1400, height)
            self.driver.save_screenshot(str(Path(folder) / f"{name}.png"))


@pytest.mark.timeout(60)
def test_a_designer_builds_a_three_step_workflow_fixes_a_validation_error_and_publishes_version_1(
    browser, live_server, django_user_model, roles
):
    django_user_model.objects.create_superuser(username="designer", email="designer@example.com", password=PASSWORD)
    designer = Designer(browser, live_server.url)

    designer.open("/admin/login/?next=/admin/")
    designer.type("username", "designer")
    designer.type("password", PASSWORD)
    designer.press("#login-form input[type=submit]")
    assert designer.has("#user-tools"), "not logged in"

    designer.open("/admin/workflow/workflow/add/")
    designer.type("name", "Equipment Request")
    designer.type("department", "Asset Department")
    designer.type("category", "Equipment")
    designer.press("input[name=_save]")
    workflow = Workflow.objects.get(name="Equipment Request")
    assert "was added as a draft" in designer.text_of(".messagelist")

    # Three steps, but none of them is an end step yet.
    for row, (name, role) in enumerate((("Triage", "Admin"), ("Resolve", "Asset Manager"), ("Finalize", "Admin"))):
        designer.type(f"steps-{row}-name", name)
        designer.choose(f"steps-{row}-role", roles[role].pk)
    designer.tick("steps-0-is_start")
    designer.press("input[name=_continue]")

    assert "no_end_step" in designer.text_of("#problems")
    assert "Not publishable yet" in designer.text_of("#problems")
    assert designer.has("#graph svg.workflow-graph")
    designer.screenshot("designer-invalid")

    steps = {step.name: step.pk for step in workflow.steps.all()}
    designer.tick("steps-2-is_end")
    for row, (source, name, target) in enumerate((("Triage", "Submit", "Resolve"), ("Resolve", "Approve", "Finalize"))):
        designer.choose(f"transitions-{row}-from_step", steps[source])
        designer.type(f"transitions-{row}-name", name)
        designer.choose(f"transitions-{row}-to_step", steps[target])
    designer.press("input[name=_continue]")

    assert not designer.has("#problems")
    assert "can be published" in designer.text_of("#problems-none")
    graph = designer.text_of("#graph")
    for label in ("Triage", "Resolve", "Finalize", "Submit", "Approve", "role: Asset Manager", "START", "END"):
        assert label in graph
    designer.screenshot("designer-before-publish")

    designer.press("input[name=publish]")

    assert "Published version 1" in designer.text_of(".messagelist")
    assert designer.text_of("#current-version") == "Current: version 1"
    designer.screenshot("designer-published")
    workflow.refresh_from_db()
    assert workflow.status == WorkflowStatus.PUBLISHED
    assert workflow.current_version is not None
    assert workflow.current_version.number == 1
