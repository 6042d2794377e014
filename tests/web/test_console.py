"""The operator console in Debian's Chromium against a real ``gtvision serve`` (issue 17).

One server and one browser for the module; each test is one user's task. Every page is
checked for console errors, uncaught exceptions and CSP violations (``Browser.check_clean``).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from gtvision.web.auth import Role
from tests.conftest import Publisher, RedisTarget, S3Target
from tests.web.conftest import PASSWORD
from tests.web.console_harness import BUILT, Browser, Console, start_console

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FIRST_LOAD_MS = 1000
ALERT_WITHIN_S = 2.0


@pytest.fixture(scope="module")
def console(
    pg_dsn: str,
    redis_target: RedisTarget,
    s3_target: S3Target,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Console]:
    assert (BUILT / "index.html").is_file(), "console not built: bash .ci/build-console"
    yield from start_console(pg_dsn, redis_target, s3_target, tmp_path_factory.mktemp("console"))


@pytest.fixture(scope="module")
def browser(console: Console) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = Browser(pw, console.base)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def clean(browser: Browser) -> Iterator[Browser]:
    """The browser; the test fails if any of its pages logged an error or a CSP violation."""
    yield browser
    browser.check_clean()
    for page in browser.pages:
        page.context.close()
    browser.pages.clear()


def _plate() -> str:
    return f"K{uuid.uuid4().hex[:2].upper().replace('0', 'A')}{int(uuid.uuid4().int % 9000) + 1000}"


def _unacked(page: Any) -> int:
    """The unacknowledged total the queue shows (from GET /alerts/summary)."""
    text = page.inner_text("[data-testid=unacked-count]")
    return int(re.sub(r"\D", "", text.split("não")[0]) or -1)


def _until(check: Callable[[], Any], within_s: float, step_s: float = 0.05) -> Any:
    deadline = time.monotonic() + within_s
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step_s)


def test_login_in_portuguese_and_english_and_first_load(console: Console, clean: Browser) -> None:
    page = clean.page()
    page.goto(console.base + "/")
    page.wait_for_selector("#login button[type=submit]")
    loaded = page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
    assert loaded <= FIRST_LOAD_MS, f"load event at {loaded:.0f} ms (bar {FIRST_LOAD_MS})"
    assert page.evaluate("document.documentElement.lang") == "pt-BR"
    assert page.inner_text("#login button[type=submit]") == "Entrar"
    page.select_option("[data-testid=lang]", "en")
    assert page.inner_text("#login button[type=submit]") == "Log in"
    page.fill("#login-user", console.user(Role.OPERATOR))
    page.fill("#login-password", "wrong password")
    page.click("#login button[type=submit]")
    page.wait_for_selector("#login-error:has-text('Wrong user or password')")
    clean.problems = [p for p in clean.problems if "401" not in p]  # the refused login itself
    page.fill("#login-password", PASSWORD)
    page.click("#login button[type=submit]")
    page.wait_for_selector("[data-testid=nav-alerts]:has-text('Alerts')")
    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.evaluate("Object.keys(localStorage)") == ["gtv.lang"], "no token in storage"
    # back to Portuguese: every label follows, and the next page load keeps the choice
    page.select_option("[data-testid=lang]", "pt-BR")
    page.wait_for_selector("[data-testid=nav-alerts]:has-text('Alertas')")
    # a new tab of the same browser is logged in (refresh cookie), first load within the bar
    other = clean.page(page.context)
    other.goto(console.base + "/#/alerts")
    other.wait_for_selector("[data-testid=unacked-count]:has-text('não reconhecido')")
    ready_ms = other.evaluate("performance.now()")  # bar 1 s: bench/console.py measures it
    assert ready_ms <= 2 * FIRST_LOAD_MS, f"logged-in console ready after {ready_ms:.0f} ms"
    # logging out ends the session for every tab (the refresh cookie no longer works)
    other.click("[data-testid=logout]")
    other.wait_for_selector("#login")
    headers = {"X-GTV-Client": "console", "Content-Type": "application/json"}
    r = page.request.post(console.base + "/auth/refresh", data="{}", headers=headers)
    assert r.status == 401
    page.wait_for_selector("#login")


def test_alert_appears_within_two_seconds_and_is_acknowledged(
    console: Console, clean: Browser
) -> None:
    page = clean.page()
    clean.login(page, console.user(Role.OPERATOR))
    page.wait_for_selector("[data-testid=conn]:has-text('ao vivo')")
    page.wait_for_selector("[data-testid=unacked-count]:has-text('não reconhecido')")
    before = _unacked(page)
    plate = _plate()
    began = time.monotonic()
    _, alert = console.pass_and_alert(plate)
    assert alert is not None
    row = page.locator(f"[data-testid=alert-row][data-event='{alert.id}']")
    row.wait_for(timeout=5000)
    took = time.monotonic() - began
    assert took <= ALERT_WITHIN_S, f"alert shown after {took:.2f} s (bar {ALERT_WITHIN_S} s)"
    page.wait_for_selector("[data-testid=toast]")
    # a second operator's console shows the same alert pending (it acknowledges nothing)
    colleague = clean.page()
    clean.login(colleague, console.user(Role.CITY_ADMIN))
    theirs = colleague.locator(f"[data-testid=alert-row][data-event='{alert.id}']")
    theirs.wait_for(timeout=5000)
    colleague.wait_for_selector("[data-testid=conn]:has-text('ao vivo')")
    colleague.click(f"[data-testid=alert-row][data-event='{alert.id}'] a")
    colleague.wait_for_selector("[data-testid=ack-status]:has-text('Ainda não reconhecido')")
    row.locator("a").click()
    detail = page.locator(f"[data-testid=event-detail][data-event='{alert.id}']")
    detail.wait_for()
    assert plate[:3] in detail.locator("h2").inner_text()
    assert "veículo roubado" in detail.locator("[data-testid=match]").inner_text()
    time_text = detail.locator("[data-testid=event-time]").inner_text()
    assert re.fullmatch(r"\d\d/\d\d/\d{4}, \d\d:\d\d:\d\d", time_text), time_text
    page.fill("[data-testid=ack-note]", "viatura 12 enviada")
    page.click("[data-testid=ack-submit]")
    page.wait_for_selector(f"[data-testid=ack-status]:has-text('{console.user(Role.OPERATOR)}')")
    assert "viatura 12 enviada" in page.inner_text("[data-testid=ack-history]")
    acked_at = time.monotonic()
    page.wait_for_selector(f"[data-testid=alert-row][data-event='{alert.id}'].acked")
    assert _until(lambda: _unacked(page) == before, 5), (
        f"the true unacknowledged count is back at {before}: {_unacked(page)}"
    )
    # the colleague's console learns it from the live feed (alert.acknowledged), not the 15 s poll
    colleague.wait_for_selector(
        f"[data-testid=alert-row][data-event='{alert.id}'].acked", timeout=ALERT_WITHIN_S * 1000
    )
    colleague.wait_for_selector(
        f"[data-testid=ack-status]:has-text('{console.user(Role.OPERATOR)}')", timeout=2000
    )
    assert "viatura 12 enviada" in colleague.inner_text("[data-testid=ack-history]")
    assert _until(lambda: _unacked(colleague) == before, 3), _unacked(colleague)
    print(f"acknowledgement seen by the colleague {time.monotonic() - acked_at:.2f} s after")


def test_search_plate_as_typed_and_detail_plays_clip(console: Console, clean: Browser) -> None:
    passed, _ = console.pass_and_alert("KLM3907", when=datetime.now(UTC) - timedelta(minutes=2))
    page = clean.page()
    clean.login(page, console.user(Role.ANALYST), "/search")
    page.fill("[data-testid=search-plate]", "klm-3907")
    page.click("[data-testid=search-submit]")
    assert "plate=KLM3907" in page.url, "the API gets the normalised plate"
    results = page.locator("[data-testid=result]")
    page.wait_for_selector("[data-testid=search-total]:has-text('resultado')")

    def only_klm() -> bool:
        texts = results.all_inner_texts()
        return bool(texts) and all("KLM-3907" in text for text in texts)

    assert _until(only_klm, 10), results.all_inner_texts()
    assert page.locator("[data-testid=search-export]").is_visible(), "analysts may export"
    # the same car under its Mercosul plate (KLM-3907 -> KLM3J07): found with the option only
    mercosul, _ = console.pass_and_alert("KLM3J07", alert=False, clip=False)
    page.check("[data-testid=search-equivalent]")
    page.click("[data-testid=search-submit]")
    assert "equivalent=1" in page.url
    via = page.locator(f"[data-testid=result]:has(a[href='#/events/{mercosul.id}'])")
    via.locator("[data-testid=equivalent-match]").wait_for()
    assert "placa Mercosul" in via.inner_text()
    assert page.locator("[data-testid=equivalent-match]").count() == 1, results.all_inner_texts()
    page.go_back()
    page.locator(f"[data-testid=result] a[href='#/events/{passed.id}']").click()
    page.wait_for_selector("[data-testid=candidates]")
    assert "94" in page.inner_text("[data-testid=candidates]")
    assert page.locator("[data-testid=event-crop]").evaluate("img => img.naturalWidth") > 0
    clip = page.locator("[data-testid=event-clip]")
    clip.evaluate("v => v.play()")
    assert _until(lambda: clip.evaluate("v => v.currentTime") > 0.5, 10), "clip does not play"


def test_live_tile_decodes_frames(
    console: Console, clean: Browser, rtsp_publisher: Callable[..., Publisher]
) -> None:
    pub = rtsp_publisher(f"wall{uuid.uuid4().hex[:6]}", size="640x360", rate=15)
    camera = console.add_camera(f"Praça {uuid.uuid4().hex[:4]}", pub.url)
    page = clean.page(viewport={"width": 1920, "height": 1080})
    clean.login(page, console.user(Role.VIEWER), "/live")
    tile = page.locator(f"[data-testid=tile][data-camera='{camera}']")
    tile.wait_for()
    state = tile.locator("[data-testid=tile-state]")
    assert state.inner_text() == "sem sinal ainda"  # no flow reads this camera
    tile.locator("[data-testid=tile-play]").click()
    video = tile.locator("[data-testid=tile-video]")
    frames = "v => v.getVideoPlaybackQuality().totalVideoFrames"
    assert _until(lambda: video.evaluate(frames) > 0, 30, 0.2), "no frame decoded"
    first = video.evaluate(frames)
    time.sleep(1.0)
    assert video.evaluate(frames) > first, "frames stopped"
    assert video.evaluate("v => v.videoWidth") == 640
    assert state.inner_text().startswith("online · vídeo ao vivo"), "a tile that decodes is online"
    # another console, not watching: the server's relay says the camera delivers video
    other = clean.page()
    clean.login(other, console.user(Role.CITY_ADMIN), "/live")
    other_state = other.locator(
        f"[data-testid=tile][data-camera='{camera}'] [data-testid=tile-state]"
    )
    other_state.wait_for()
    assert other_state.inner_text().startswith("online · vídeo ao vivo")
    metrics = httpx.get(console.base + "/metrics").text
    assert 'gtvision_live_viewers{kind="passthrough"} 1.0' in metrics, "H.264 passthrough"
    fanout = re.search(r'gtvision_live_fanout_viewers_total\{kind="(\w+)"\} ([\d.]+)', metrics)
    assert fanout is not None, "no live viewer counted by sender"
    assert fanout.groups() == ("fanout", "1.0"), "Chromium got the fan-out's packets"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "console-live.png"))
    tile.locator("[data-testid=tile-play]").click()  # stop
    _draw_zones(console, other, camera)


def _draw_zones(console: Console, admin: Any, camera: int) -> None:
    """The city_admin draws a zone and a line on the camera's picture and saves them."""
    admin.goto(f"{console.base}/#/admin?tab=cameras")
    admin.locator(
        f"[data-testid=camera-row][data-camera='{camera}'] [data-testid=camera-edit]"
    ).click()
    picture = admin.locator("[data-testid=zone-picture]")
    picture.wait_for(timeout=20_000)
    assert _until(lambda: picture.evaluate("i => i.naturalWidth") == 640, 10), "no snapshot"
    overlay = admin.locator("[data-testid=zone-overlay]")
    box = overlay.bounding_box()
    assert box is not None

    def click(x: float, y: float) -> None:
        overlay.click(position={"x": x * box["width"], "y": y * box["height"]})

    admin.click("[data-testid=zone-new]")
    admin.fill("[data-testid=zone-name]", "calcada")
    for x, y in ((0.5, 0.5), (0.9, 0.5), (0.9, 0.9), (0.5, 0.9)):
        click(x, y)
    admin.click("[data-testid=zone-finish]")
    admin.click("[data-testid=line-new]")
    assert admin.input_value("[data-testid=zone-name]") == "linha 1"
    click(0.1, 0.75)
    click(0.9, 0.75)
    assert admin.locator("[data-testid=zone-list] li").count() == 2
    admin.screenshot(path=str(ARTIFACTS / "console-zones.png"))
    admin.click("[data-testid=camera-save]")
    admin.locator("[data-testid=camera-form]").wait_for(state="detached")
    token = httpx.post(
        console.base + "/auth/login",
        json={"username": console.user(Role.CITY_ADMIN), "password": PASSWORD},
    ).json()["access_token"]
    zones = httpx.get(
        f"{console.base}/cameras/{camera}", headers={"Authorization": f"Bearer {token}"}
    ).json()["zones"]
    assert [(z["kind"], z["name"], len(z["points"])) for z in zones] == [
        ("zone", "calcada", 4),
        ("line", "linha 1", 2),
    ]
    (x1, y1), (x2, y2) = zones[1]["points"]
    assert abs(x1 - 0.1) < 0.01
    assert abs(y1 - 0.75) < 0.01
    assert abs(x2 - 0.9) < 0.01
    assert abs(y2 - 0.75) < 0.01


def test_recordings_timeline_plays(console: Console, clean: Browser) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    rec = console.add_recording(console.camera(), start, 6)
    assert rec
    page = clean.page()
    at = quote((start + timedelta(seconds=2)).isoformat())
    clean.login(page, console.user(Role.OPERATOR), f"/recordings?camera={console.camera()}&at={at}")
    page.wait_for_selector("[data-testid=timeline] .seg")
    video = page.locator("[data-testid=rec-video]")
    assert _until(lambda: video.evaluate("v => v.currentTime") > 2.5, 10), "recording does not play"
    assert page.inner_text("[data-testid=rec-position]").count(":") == 2
    # an event in that recording: its detail links the moment and exports the footage around it
    passed, _ = console.pass_and_alert(_plate(), when=start + timedelta(seconds=3), alert=False)
    page.goto(f"{console.base}/#/events/{passed.id}")
    page.wait_for_selector("[data-testid=open-recording]")
    page.click("[data-testid=export-event]")
    link = page.locator("[data-testid=export-link]")
    link.wait_for(timeout=20_000)
    assert httpx.get(str(link.get_attribute("href"))).content[4:8] == b"ftyp", "an MP4"


def test_hotlist_controls_follow_permissions(console: Console, clean: Browser) -> None:
    viewer = clean.page()
    clean.login(viewer, console.user(Role.VIEWER), "/hotlists")
    viewer.wait_for_selector("text=Seu perfil não tem acesso a esta página.")
    assert viewer.locator("[data-testid=nav-hotlists]").count() == 0
    assert (
        viewer.locator("[data-testid=hotlist-new], [data-testid=hotlist-import-open]").count() == 0
    )
    operator = clean.page()
    clean.login(operator, console.user(Role.OPERATOR), "/hotlists")
    operator.wait_for_selector("[data-testid=hotlist-row]")
    assert operator.locator("[data-testid=hotlist-new]").count() == 0, "no edit controls"
    assert operator.locator("text=Excluir").count() == 0
    admin = clean.page()
    clean.login(admin, console.user(Role.CITY_ADMIN), "/hotlists")
    admin.click("[data-testid=hotlist-new]")
    admin.fill("[data-testid=hotlist-pattern]", "gtv-1234")
    admin.fill("[data-testid=hotlist-reason]", "placa clonada")
    admin.click("[data-testid=hotlist-save]")
    admin.wait_for_selector("[data-testid=hotlist-row]:has-text('GTV-1234')")
    token = httpx.post(
        console.base + "/auth/login",
        json={"username": console.user(Role.CITY_ADMIN), "password": PASSWORD},
    ).json()["access_token"]
    items = httpx.get(
        console.base + "/hotlists", headers={"Authorization": f"Bearer {token}"}
    ).json()["items"]
    assert any(i["pattern"] == "GTV1234" and i["reason"] == "placa clonada" for i in items)
    _hotlist_edit_import_delete(admin)
    clean.problems = [p for p in clean.problems if "422" not in p]  # the refused CSV check
    # administration: a refused stream URL is shown at its field, not as a bare error
    admin.goto(f"{console.base}/#/admin?tab=cameras")
    admin.click("[data-testid=camera-new]")
    form = admin.locator("[data-testid=camera-form]")
    form.locator("input").first.fill("Portão norte")
    admin.fill("[data-testid=camera-url]", "rtsp://169.254.169.254/stream")
    form.locator("button[type=submit]").click()
    error = form.locator(".field.invalid .field-error")
    error.wait_for()
    assert "169.254.169.254" in error.inner_text()
    clean.problems = [p for p in clean.problems if "422" not in p]  # the refused request itself
    _admin_tabs(console, admin, token)


def _hotlist_edit_import_delete(admin: Any) -> None:
    """A city_admin edits an entry, imports a CSV (a bad file refused line by line first) and
    deletes an entry, on the hotlist page already open."""
    row = admin.locator("[data-testid=hotlist-row]:has-text('GTV-1234')")
    row.locator("[data-testid=hotlist-edit]").click()
    admin.fill("[data-testid=hotlist-reason]", "placa clonada, confirmada")
    admin.click("[data-testid=hotlist-save]")
    admin.wait_for_selector("[data-testid=hotlist-row]:has-text('placa clonada, confirmada')")
    admin.click("[data-testid=hotlist-import-open]")
    upload = admin.locator("[data-testid=hotlist-import-file]")
    tag = "".join(chr(65 + b % 26) for b in uuid.uuid4().bytes[:2])  # two letters: QXY-1234
    bad = f"pattern;kind;reason\nQ{tag}1234;exata;furto\n".encode()
    upload.set_input_files(files=[{"name": "ruim.csv", "mimeType": "text/csv", "buffer": bad}])
    admin.click("[data-testid=hotlist-import-check]")
    errors = admin.locator("[data-testid=hotlist-import-errors]")
    errors.wait_for()
    assert "linha 2: kind valor não aceito" in errors.inner_text(), errors.inner_text()
    good = f"pattern;kind;reason\nQ{tag}-1234;exact;furto\nQ{tag}1*;wildcard;frota\n".encode()
    upload.set_input_files(files=[{"name": "boa.csv", "mimeType": "text/csv", "buffer": good}])
    admin.click("[data-testid=hotlist-import-check]")
    admin.wait_for_selector("text=2 entradas válidas.")
    admin.click("[data-testid=hotlist-import-do]")
    admin.wait_for_selector("[data-testid=hotlist-import-done]:has-text('2 entradas importadas.')")
    admin.wait_for_selector(f"[data-testid=hotlist-row]:has-text('Q{tag}-1234')")
    admin.once("dialog", lambda d: d.accept())  # "Excluir GTV1234? …"
    row.locator("[data-testid=hotlist-delete]").click()
    row.wait_for(state="detached")


def _admin_tabs(console: Console, admin: Any, token: str) -> None:
    """The city_admin's other administration tabs: users (create, block), cities (its own,
    read-only), the audit log of what was just done."""
    admin.click("[data-testid=admin-tab-users]")
    admin.click("[data-testid=user-new]")
    name = f"novo-{uuid.uuid4().hex[:6]}"
    admin.fill("[data-testid=user-name]", name)
    admin.fill("[data-testid=user-password]", "uma senha longa o bastante")
    admin.select_option("[data-testid=user-role]", "viewer")
    admin.locator("[data-testid=user-form] button[type=submit]").click()
    row = admin.locator(f"[data-testid=user-row][data-user='{name}']")
    row.wait_for()
    assert row.locator("[data-testid=user-row-role]").input_value() == "viewer"
    assert "visualizador" in row.inner_text()
    row.locator("[data-testid=user-row-disabled]").check()
    h = {"Authorization": f"Bearer {token}"}

    def blocked() -> bool:
        users = httpx.get(console.base + "/users", headers=h).json()["items"]
        return any(u["username"] == name and u["disabled"] for u in users)

    assert _until(blocked, 5), "the checkbox blocks the user"
    admin.click("[data-testid=admin-tab-cities]")
    city = admin.locator("[data-testid=city-row]")
    city.first.wait_for()
    assert city.count() == 1
    assert "America/Sao_Paulo" in city.inner_text()
    assert admin.locator("[data-testid=city-new]").count() == 0, "only an admin adds cities"
    admin.click("[data-testid=admin-tab-audit]")
    admin.fill("[data-testid=audit-filter]", "user.update")
    admin.press("[data-testid=audit-filter]", "Enter")
    audit = admin.locator("[data-testid=audit-row]")
    # the unfiltered list may still be shown (its newest row is the same user.update): wait
    # until every row shown is one of the filtered answer
    assert _until(
        lambda: audit.count() > 0 and all("user.update" in r for r in audit.all_inner_texts()), 5
    ), audit.all_inner_texts()


def test_docs_viewer_and_screenshots(console: Console, clean: Browser) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    docs = clean.page()
    docs.goto(console.base + "/docs")
    docs.wait_for_selector("[data-testid=operation]")
    docs.fill("[data-testid=docs-filter]", "hotlists/import")
    assert docs.locator("[data-testid=operation]").count() == 1
    console.pass_and_alert("BRA2E19", when=datetime.now(UTC) - timedelta(seconds=30))
    _, alert = console.pass_and_alert("KLM3907", when=datetime.now(UTC) - timedelta(seconds=5))
    assert alert is not None
    for name, size in (("phone", (390, 844)), ("wall", (1920, 1080))):
        page = clean.page(viewport={"width": size[0], "height": size[1]})
        clean.login(page, console.user(Role.OPERATOR), f"/alerts/{alert.id}")
        page.wait_for_selector("[data-testid=event-crop]")
        page.wait_for_function(
            "document.querySelector('[data-testid=event-crop]').naturalWidth > 0"
        )
        width = page.evaluate("document.scrollingElement.scrollWidth")
        assert width <= size[0], f"{name}: page is {width} px wide in a {size[0]} px window"
        page.screenshot(path=str(ARTIFACTS / f"console-{name}.png"))
        assert (ARTIFACTS / f"console-{name}.png").stat().st_size > 20_000


def test_feed_of_500_events_stays_bounded_and_responsive(console: Console, clean: Browser) -> None:
    page = clean.page()
    clean.login(page, console.user(Role.OPERATOR))
    page.wait_for_selector("[data-testid=conn]:has-text('ao vivo')")
    page.wait_for_selector("[data-testid=alert-row]")
    # main-thread health while the feed runs: the longest task, and the worst lateness of a
    # 50 ms timer (what a user's click would wait for)
    page.evaluate(
        "window.__long = 0; window.__lag = 0;"
        "new PerformanceObserver(l => l.getEntries().forEach("
        " e => { window.__long = Math.max(window.__long, e.duration); }))"
        ".observe({type: 'longtask'});"
        "let last = performance.now(); setInterval(() => { const now = performance.now();"
        " window.__lag = Math.max(window.__lag, now - last - 50); last = now; }, 50);"
    )
    base = datetime.now(UTC)
    worst_click_ms = 0.0
    for burst in range(10):  # 250 passes + 250 alerts in ~10 s: six times the 500/min bar
        for i in range(25):
            console.pass_and_alert(
                f"Z{burst:02d}{i:04d}"[:7],
                when=base + timedelta(seconds=burst * 25 + i),
                clip=False,
                crop=False,
            )
        began = time.monotonic()  # a click that re-renders every row: the language
        lang, label = ("en", "Alerts") if burst % 2 == 0 else ("pt-BR", "Alertas")
        page.select_option("[data-testid=lang]", lang)
        page.wait_for_selector(f"[data-testid=nav-alerts]:has-text('{label}')")
        worst_click_ms = max(worst_click_ms, (time.monotonic() - began) * 1000)
    rows = page.locator("[data-testid=alert-row]")
    assert _until(lambda: rows.count() >= 200, 10), rows.count()
    time.sleep(1)
    assert rows.count() == 200, f"the live list is bounded at 200 rows: {rows.count()}"
    longest, lag = page.evaluate("[window.__long, window.__lag]")
    # generous bounds: the machine running CI is shared; bench/console.py measures the feed at
    # its real rate against tighter bars (longest task 200 ms, timer lateness 250 ms)
    print(f"feed: click {worst_click_ms:.0f} ms, long task {longest:.0f} ms, lag {lag:.0f} ms")
    assert worst_click_ms < 1000, f"a click took {worst_click_ms:.0f} ms during the feed"
    assert longest < 500, f"a {longest:.0f} ms long task during the feed"
