"""The form that creates an experiment: name, variants, split, metrics, duration, minimum effect, start now.

Each field is checked by the experiments model's own parsers; a bad value shows its
reason under the field and nothing is written. A good form is written through the
``create`` callable in a thread worker; a refusal from the store (a name already
taken) also shows in the form. ``ctrl+s`` or the Create button submits, ``escape`` cancels.
"""

from __future__ import annotations

import re
from typing import Callable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static

from qbconsole.config.durations import parse_duration
from qbconsole.experiments.model import (
    DEFAULT_MDE, Experiment, ExperimentError, Spec, check_name, parse_mde, parse_metric_arg, parse_split,
    parse_variants,
)

FIELDS: tuple[tuple[str, str, str, str], ...] = (
    # id, label, initial value, placeholder
    ("name", "Name", "", "e.g. checkout_button_colour"),
    ("variants", "Variants", "control,treatment", "comma-separated; the first is the control"),
    ("split", "Split", "", "e.g. 50,50 or 90,10 (empty: equal)"),
    ("metrics", "Metrics", "", "conversion=purchase revenue=purchase.value (first: primary)"),
    ("duration", "Duration", "14d", "e.g. 14d (empty: none; every look is then sequential)"),
    ("mde", "Min. effect", f"{DEFAULT_MDE:.0%}", "smallest relative lift worth detecting, e.g. 5%"),
    ("description", "Description", "", "optional"),
)
_SEPARATORS = re.compile(r"[,\s]+")

Create = Callable[[Spec, bool], Experiment]
"""Writes the experiment (``start`` now or as a draft); raises ExperimentError when refused. Runs in a thread."""


def parse_form(values: dict[str, str]) -> tuple[Spec | None, dict[str, str]]:
    """The spec the fields describe, or None and field id -> reason (``""`` for the form as a whole)."""
    errors: dict[str, str] = {}
    parsed: dict[str, object] = {}

    def check(field: str, parse: Callable[[str], object]) -> None:
        try:
            parsed[field] = parse(values.get(field, "").strip())
        except (ExperimentError, ValueError) as err:
            errors[field] = str(err)

    check("name", check_name)
    check("variants", parse_variants)
    if "variants" in parsed:
        count = len(parsed["variants"])  # type: ignore[arg-type]
        check("split", lambda text: parse_split(text, count) if text else (1.0,) * count)
    check("metrics", _metrics)
    check("duration", _duration)
    check("mde", parse_mde)
    if errors:
        return None, errors
    try:
        spec = Spec(parsed["name"], parsed["variants"], parsed["split"], parsed["metrics"],  # type: ignore[arg-type]
                    duration_s=parsed["duration"], mde=parsed["mde"],  # type: ignore[arg-type]
                    description=values.get("description", "").strip())
    except ExperimentError as err:
        return None, {"": str(err)}
    return spec, {}


def _metrics(text: str):
    items = [item for item in _SEPARATORS.split(text) if item]
    if not items:
        raise ExperimentError("give at least one metric, e.g. conversion=purchase")
    return tuple(parse_metric_arg(item) for item in items)


def _duration(text: str) -> float | None:
    if not text:
        return None
    try:
        seconds = parse_duration(text)
    except ValueError as err:
        raise ExperimentError(f"{text!r} is not a duration ({err}); use e.g. 14d or 36h") from None
    if seconds <= 0:
        raise ExperimentError("the duration must be longer than zero (empty: none)")
    return seconds


class Created(Message):
    """Posted by the form's write worker: the experiment, or the store's reason for refusing it."""

    def __init__(self, experiment: Experiment | None, error: str | None = None) -> None:
        super().__init__()
        self.experiment = experiment
        self.error = error


class ExperimentForm(ModalScreen[Experiment | None]):
    """Create an experiment; dismisses with the stored experiment, or None when cancelled."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="form.cancel"),
        Binding("ctrl+s", "submit", "Create", id="form.submit"),
    ]

    def __init__(self, create: Create) -> None:
        super().__init__()
        self._create = create
        self.writing = False

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="experiment-form", classes="dialog") as dialog:
            dialog.border_title = "New experiment"
            dialog.border_subtitle = "ctrl+s or enter creates · escape cancels"
            for field, label, value, placeholder in FIELDS:
                with Horizontal(classes="form-row"):
                    yield Label(label, classes="form-label")
                    yield Input(value, placeholder=placeholder, id=f"form-{field}", compact=True)
                yield Static("", id=f"form-{field}-error", classes="form-error", markup=False)
            with Horizontal(classes="form-row"):
                yield Label("", classes="form-label")
                yield Checkbox("Start now (else a draft)", True, id="form-start", compact=True)
            yield Static("", id="form-error", classes="form-error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Create", variant="primary", id="form-create", compact=True)
                yield Button("Cancel", id="form-cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#form-name", Input).focus()

    def values(self) -> dict[str, str]:
        return {field: self.query_one(f"#form-{field}", Input).value for field, *_ in FIELDS}

    def show_errors(self, errors: dict[str, str]) -> None:
        """Each reason under its field (the form's own on the last line); the first bad field gets focus."""
        for field, *_ in (*FIELDS, ("",)):
            box = self.query_one(f"#form-{field}-error" if field else "#form-error", Static)
            reason = errors.get(field, "")
            box.update(f"✖ {reason}" if reason else "")
            box.display = bool(reason)
        first = next((field for field, *_ in FIELDS if field in errors), None)
        if first is not None:
            self.query_one(f"#form-{first}", Input).focus()

    @on(Input.Changed)
    def _recheck(self, event: Input.Changed) -> None:
        """A field whose error is shown is checked again as it is edited, so a fixed value clears it."""
        field = (event.input.id or "").removeprefix("form-")
        box = self.query(f"#form-{field}-error")
        if box and box.first().display:
            _spec, errors = parse_form(self.values())
            box.first().update(f"✖ {errors[field]}" if field in errors else "")
            box.first().display = field in errors

    @on(Input.Submitted)
    @on(Button.Pressed, "#form-create")
    def action_submit(self) -> None:
        if self.writing:
            return
        spec, errors = parse_form(self.values())
        self.show_errors(errors)
        if spec is None:
            return
        self.writing = True
        self.query_one("#form-create", Button).disabled = True
        self._write(spec, self.query_one("#form-start", Checkbox).value)

    @work(thread=True, exclusive=True, group="create experiment", name="create experiment", exit_on_error=False)
    def _write(self, spec: Spec, start: bool) -> None:
        try:
            experiment = self._create(spec, start)
        except ExperimentError as err:
            self.post_message(Created(None, str(err)))
            return
        except Exception as err:  # the store itself failed: say so in the form, keep what was typed
            self.post_message(Created(None, f"{type(err).__name__}: {err}"))
            return
        self.post_message(Created(experiment))

    def on_created(self, message: Created) -> None:
        self.writing = False
        self.query_one("#form-create", Button).disabled = False
        if message.experiment is not None:
            self.dismiss(message.experiment)
            return
        field = "name" if "already exists" in (message.error or "") else ""
        self.show_errors({field: message.error or "refused"})

    @on(Button.Pressed, "#form-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
