"""The console's Experiments section: list, detail, the create form, stopping with confirmation.

A real store in tmp_path seeded through ``lifecycle.create``, ``assign.expose`` and
``assign.track`` (fixed seeds, so the numbers are the same every run); the clock is
frozen at NOW_MS. The detail's figures are checked against ``analyze()`` and
``decide()`` run on the same store; snapshots pin the list with its detail and the
form (regenerate with ``--snapshot-update`` after an intended change and read the
SVGs' text before committing them).
"""

from __future__ import annotations

import json

import pytest
from textual.widgets import Button, Input, Static

from helpers import until
from qbconsole.experiments import lifecycle
from qbconsole.experiments.analyze import analyze
from qbconsole.experiments.assign import expose, track
from qbconsole.experiments.display import lift_text, pct
from qbconsole.experiments.model import Spec, parse_metric_arg
from qbconsole.experiments.verdict import decide
from qbconsole.store import Store
from qbconsole.tui.app import QBConsoleApp
from qbconsole.tui.expfmt import ci_bar, scale_header, verdict_mark
from qbconsole.tui.modals.confirm import ConfirmModal
from qbconsole.tui.modals.experiment_form import ExperimentForm, parse_form
from qbconsole.tui.screens.experiments import ExperimentsScreen, ExperimentTable
from test_tui_snapshots import NOW_MS, utc, wait_for_data  # noqa: F401  (utc is a fixture)

DAY = 86_400_000
OPERATOR = "carol"


def seed_experiments(store: Store, now: int = NOW_MS) -> None:
    """checkout_button: running two days, 600 users, the treatment converting better;
    old_banner: stopped after a day with a few users."""
    def seed(conn) -> None:
        spec = Spec("checkout_button", ("control", "treatment"), (1.0, 1.0),
                    (parse_metric_arg("conversion=purchase"), parse_metric_arg("revenue=purchase.value")),
                    duration_s=14 * 86400, seed="checkout-seed", description="Green or blue checkout button")
        exp = lifecycle.create(conn, spec, "alice", now - 2 * DAY, start=True)
        for i in range(600):
            user = f"user-{i}"
            ts = now - 2 * DAY + 60_000 + i * 200_000
            variant = expose(conn, exp, user, ts).variant
            if i % 10 < (3 if variant == "control" else 4):
                track(conn, exp, user, "purchase", ts + 30_000, 20.0 + i % 7)
        old = lifecycle.create(conn, Spec("old_banner", ("control", "bold"), (1.0, 1.0),
                                          (parse_metric_arg("conversion=click"),), seed="banner-seed"),
                               "bob", now - 5 * DAY, start=True)
        for i in range(40):
            expose(conn, old, f"visitor-{i}", now - 5 * DAY + 1_000 * (i + 1))
        lifecycle.stop(conn, "old_banner", "bob", now - 4 * DAY, "wrong copy")

    store.transaction(seed)


@pytest.fixture
def store(tmp_path):
    store = Store.open(tmp_path / "qb.db")
    seed_experiments(store)
    yield store
    store.close()


def make_app(store, tmp_path, **kw) -> QBConsoleApp:
    kw.setdefault("clock", lambda: NOW_MS / 1000)
    kw.setdefault("settings_path", tmp_path / "config" / "settings.json")
    kw.setdefault("operator", OPERATOR)
    kw.setdefault("theme", "dark")
    return QBConsoleApp(store, **kw)


async def open_experiments(pilot) -> ExperimentsScreen:
    app = pilot.app
    await until(pilot, lambda: app.snapshot is not None)
    await pilot.press("5")
    await until(pilot, lambda: isinstance(app.screen, ExperimentsScreen))
    screen = app.screen
    await until(pilot, lambda: screen.rows and all(r.analysis is not None for r in screen.rows.values()))
    await pilot.pause()
    return screen


def detail_text(screen: ExperimentsScreen) -> str:
    return str(screen.query_one("#experiment-detail-text", Static).render())


def audit(store: Store, action: str) -> list[tuple]:
    return store.read().execute("SELECT actor, target, detail FROM audit_log WHERE action = ? ORDER BY id",
                                (action,)).fetchall()


# ---- pure parts -----------------------------------------------------------------------------------
def test_interval_bar_is_drawn_over_a_zero_line():
    # scale -20 % .. +20 % over 21 cells: zero is the middle cell
    assert ci_bar(0.05, 0.15, 0.10, 0.2, 21) == "          │ ━━━●━━   "  # wholly above zero
    assert ci_bar(-0.05, 0.15, 0.05, 0.2, 21) == "        ━━┼━●━━━━━   "  # across zero
    assert ci_bar(-0.15, -0.05, -0.1, 0.2, 20) == "  ━━●━━━ │         "  # below zero; odd width kept
    assert ci_bar(-0.5, 0.1, -0.1, 0.2, 21).startswith("◂")  # beyond the scale
    assert scale_header(0.2, 21) == "-20%      0      +20%"


def test_the_form_checks_every_field_with_the_models_parsers():
    good = {"name": "x1", "variants": "a,b,c", "split": "50,25,25", "metrics": "conversion=buy, revenue=buy.value",
            "duration": "7d", "mde": "10%", "description": ""}
    spec, errors = parse_form(good)
    assert errors == {} and spec.variants == ("a", "b", "c") and spec.weights == (50.0, 25.0, 25.0)
    assert [str(m) for m in spec.metrics] == ["conversion=buy", "revenue=buy.value"] and spec.mde == 0.1
    assert spec.duration_s == 7 * 86400
    spec, errors = parse_form({**good, "name": "no spaces", "split": "50,50", "metrics": "", "duration": "soon"})
    assert spec is None and set(errors) == {"name", "split", "metrics", "duration"}
    assert "3 variants" in errors["split"] and "at least one metric" in errors["metrics"]
    spec, errors = parse_form({**good, "metrics": "x=buy x=sell"})
    assert spec is None and "unique" in errors[""]  # the spec as a whole


# ---- pilot ---------------------------------------------------------------------------------------
async def test_list_and_detail_show_what_analyze_computes(store, tmp_path):
    conn = store.read()
    expected = {}
    for exp in lifecycle.list_all(conn):
        analysis = analyze(conn, exp, NOW_MS)
        expected[exp.name] = (exp, analysis, decide(analysis))
    app = make_app(store, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_experiments(pilot)
        table = screen.query_one(ExperimentTable)
        assert [k.value for k in table.rows] == ["checkout_button", "old_banner"]  # running first
        for name, (exp, analysis, verdict) in expected.items():
            row = [str(c) for c in table.get_row(name)]
            assert row[1].endswith(exp.status) and row[2] == f"{analysis.users:,}"
            assert row[4] == verdict_mark(verdict, short=True).text
        assert str(table.get_row("checkout_button")[3]) == "2d of 14d"

        exp, analysis, verdict = expected["checkout_button"]
        text = detail_text(screen)
        assert verdict.reason in text and f"Verdict  " in text
        for arm in analysis.arms:
            conv = arm.metrics["conversion"]
            line = next(l for l in text.splitlines() if l.startswith(arm.variant) and f" {conv.n} " in l)
            assert f" {conv.conversions} " in line and pct(conv.mean, signed=False) in line
        c = analysis.comparison("conversion", "treatment")
        treatment = next(l for l in text.splitlines() if l.startswith("treatment") and "●" in l)
        assert lift_text(c) in treatment
        assert f"{c.p_value:.3g}" in treatment and f"{c.chance_to_win:.0%}" in treatment
        assert "Sample ratio  ✔ ok" in text and f"{analysis.users} of ~{verdict.needed_users} users" in text

        await pilot.press("down")
        await until(pilot, lambda: "old_banner" in detail_text(screen))
        assert "■ stopped" in detail_text(screen) and "stopped 2025-12-28" in detail_text(screen)
        assert screen.check_action("stop", ()) is None  # a stopped experiment cannot be stopped again


async def test_creating_an_experiment_through_the_form(store, tmp_path):
    app = make_app(store, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_experiments(pilot)
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ExperimentForm))
        form = app.screen
        assert app.focused is form.query_one("#form-name", Input)
        await pilot.press(*"search_ranking")
        form.query_one("#form-split", Input).value = "90,10"
        form.query_one("#form-metrics", Input).value = "conversion=purchase revenue=purchase.value"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, ExperimentsScreen))
        created = lifecycle.find(store.read(), "search_ranking")
        assert created is not None and created.status == "running" and created.created_by == OPERATOR
        assert created.weights == (90.0, 10.0) and created.duration_s == 14 * 86400 and created.origin == "cli"
        assert [str(m) for m in created.metrics] == ["conversion=purchase", "revenue=purchase.value"]
        actor, target, detail = audit(store, "experiment.create")[-1]
        assert (actor, target) == (OPERATOR, "search_ranking") and json.loads(detail)["split"] == [90.0, 10.0]
        await until(pilot, lambda: "search_ranking" in screen.rows)
        assert screen.selected_name() == "search_ranking"


async def test_bad_input_shows_an_inline_error_and_creates_nothing(store, tmp_path):
    app = make_app(store, tmp_path)
    before = [e.name for e in lifecycle.list_all(store.read())]
    async with app.run_test(size=(100, 30)) as pilot:
        await open_experiments(pilot)
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ExperimentForm))
        form = app.screen
        await pilot.press(*"promo", "enter")  # no metric given
        await pilot.pause()
        error = form.query_one("#form-metrics-error", Static)
        assert error.display and "at least one metric" in str(error.render())
        assert app.focused is form.query_one("#form-metrics", Input)
        form.query_one("#form-metrics", Input).value = "conversion=purchase"
        await pilot.pause()
        assert not error.display  # checked again as it changes: fixed, so its error is gone
        form.query_one("#form-split", Input).value = "70"
        await pilot.click("#form-create")
        await pilot.pause()
        assert "split has 1 weights but there are 2 variants" in str(form.query_one("#form-split-error").render())
        # a name the store already holds: refused by the store, shown under the name
        form.query_one("#form-split", Input).value = ""
        form.query_one("#form-name", Input).value = "checkout_button"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: form.query_one("#form-name-error").display)
        assert "already exists" in str(form.query_one("#form-name-error").render())
        assert not form.query_one("#form-create", Button).disabled
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ExperimentsScreen))
    assert [e.name for e in lifecycle.list_all(store.read())] == before
    assert len(audit(store, "experiment.create")) == 2  # the two seeded ones only


async def test_stopping_asks_first_with_focus_on_no(store, tmp_path):
    app = make_app(store, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_experiments(pilot)
        assert screen.selected_name() == "checkout_button"
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert app.focused.id == "confirm-no"
        assert "Stop checkout_button (running)?" in str(app.screen.query_one(".dialog-heading").render())
        await pilot.press("enter")  # on No: nothing happens
        await until(pilot, lambda: isinstance(app.screen, ExperimentsScreen))
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, ExperimentsScreen))
        await pilot.pause(0.2)
        assert lifecycle.find(store.read(), "checkout_button").status == "running"
        assert [t for _, t, _ in audit(store, "experiment.stop")] == ["old_banner"]

        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await until(pilot, lambda: lifecycle.find(store.read(), "checkout_button").status == "stopped")
        exp = lifecycle.find(store.read(), "checkout_button")
        assert (exp.stopped_by, exp.stopped_at) == (OPERATOR, NOW_MS)
        actor, target, detail = audit(store, "experiment.stop")[-1]
        assert (actor, target) == (OPERATOR, "checkout_button")
        assert json.loads(detail) == {"was": "running", "reason": "stopped from the console"}
        await until(pilot, lambda: screen.rows["checkout_button"].experiment.status == "stopped")
        assert str(screen.query_one(ExperimentTable).get_row("checkout_button")[1]).endswith("stopped")


# ---- snapshots --------------------------------------------------------------------------------------
@pytest.fixture
def frozen(tmp_path, utc, store):
    return make_app(store, tmp_path, refresh=60.0)


@pytest.mark.parametrize("size", [(100, 30), (80, 24)], ids=["100x30", "80x24"])
def test_experiments_snapshot(snap_compare, frozen, size):
    async def run_before(pilot):
        await wait_for_data(pilot)
        await open_experiments(pilot)

    assert snap_compare(frozen, terminal_size=size, run_before=run_before)


def test_create_form_snapshot(snap_compare, frozen):
    async def run_before(pilot):
        await wait_for_data(pilot)
        await open_experiments(pilot)
        await pilot.press("c")
        await until(pilot, lambda: isinstance(pilot.app.screen, ExperimentForm))
        await pilot.press(*"promo", "enter")  # shows the inline error of the missing metric
        await pilot.pause()

    assert snap_compare(frozen, terminal_size=(100, 30), run_before=run_before)
