"""The lecture's panels and small screens: narration, key help, restart confirmation, jump to a step.

Text from the lesson is ours; anything measured (paths, numbers) is added
as ``rich.text.Text`` pieces, never parsed as markup.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from ..demo.lesson import StepResult
from ..demo.steps import Step
from .screens.help import PAGE_STATES_HELP, HelpScreen
from .widgets.evidence import VERDICT
from .widgets.page_map import LEGEND_ORDER, STATE_STYLE

# the lecture's keys, as the footer and ? help show them (one meaning each)
KEYS = (
    ("n  space", "run the next step (while looking back: show the next recorded step)"),
    ("b  ←", "back: the previous step's recorded evidence and page map"),
    ("1-9  g N", "jump to step N: recorded steps are shown, later ones are run up to N"),
    ("p", "pause / resume the live refresh"),
    ("a", "the workload's own mappings only / all of its mappings"),
    ("r", "restart with a fresh workload (asks first)"),
    ("/  o", "filter / sort the VMA table"),
    ("s", "save the current snapshot as JSON"),
    ("l", "show / hide the legend of colours and marks"),
    ("?", "this help (Esc closes it)"),
    ("q", "quit (the workload and its files are removed)"),
)


class NarrationPanel(Static):
    """Step title, then the verdict when measured, the narration, and what to watch."""

    DEFAULT_CSS = """
    NarrationPanel { height: auto; padding: 0 1; }
    """

    def __init__(self, total: int, *, big: bool = False, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.total = total
        self.big = big
        self.step: Step | None = None
        self.index = 0
        self.result: StepResult | None = None
        self.state = "intro"  # intro | running | done | error | finished | review
        self.error: str | None = None
        self.next_title: str | None = None
        self.root_hidden = False

    def intro(self, first: Step, root: bool) -> None:
        self.step, self.index, self.result, self.state = first, 0, None, "intro"
        self.root_hidden = not root
        self.next_title = first.title
        self._show()

    def running(self, step: Step, index: int, next_title: str | None) -> None:
        self.step, self.index, self.result, self.error = step, index, None, None
        self.state, self.next_title = "running", next_title
        self._show()

    def done(self, result: StepResult, next_title: str | None = None) -> None:
        self.step, self.index, self.result, self.state = result.step, result.index, result, "done"
        self.next_title = next_title
        self._show()

    def review(self, result: StepResult) -> None:
        self.step, self.index, self.result, self.state = result.step, result.index, result, "review"
        self._show()

    def failed(self, error: str) -> None:
        self.error, self.state = error, "error"
        self._show()

    def finished(self) -> None:
        self.state = "finished"
        self._show()

    def text(self) -> Text:
        t = Text()
        b = "bold " if self.big else ""
        if self.state == "intro":
            t.append("vmainspect lecture: how mmap and page faults work\n", b + "bold")
            t.append(
                f"{self.total} steps. Each makes the demo workload do one thing; vmainspect then "
                "checks the step's claim against the kernel's own accounting, and answers the "
                "article on mmap and crashes claim by claim.\n",
                b,
            )
            if self.root_hidden:
                t.append(
                    "Not root: dirty pages, mapping counts and page frame numbers cannot be read "
                    "(/proc/kpageflags, /proc/kpagecount, pagemap PFNs); those claims show as unknown.\n",
                    "bold yellow",
                )
            t.append(f"\nPress n or space for step 1: {self.next_title}", "bold")
            return t
        step = self.step
        assert step is not None
        t.append(f"Step {self.index + 1}/{self.total} · ", "bold")
        t.append(step.title, "bold underline" if not self.big else "bold reverse")
        if self.state == "review":
            t.append("  (recorded: n goes forward)", "bold magenta")
        t.append("\n")
        if self.result is not None and self.state != "running":
            word, style = VERDICT[self.result.holds]
            t.append(f" {word} ", style)
            t.append(" " + step.claim + "\n", b)
            t.append("Measured: ", "bold")
            t.append(self.result.summary + "\n", b)
            if self.result.reason:
                t.append(self.result.reason + "\n", "yellow" if self.result.holds is None else "red")
        if step.article:
            t.append("Article: ", "bold magenta")
            t.append(step.article + "\n", b)
            t.append("Linux:   ", "bold green")
            t.append((step.linux or "") + "\n", b)
        for line in step.narration:
            t.append("  " + line + "\n", b)
        t.append("Watch: ", "bold cyan")
        t.append(step.watch + "\n", b + "cyan")
        if self.root_hidden and step.root_note:
            t.append(f"Not root: {step.root_note}; that part is unknown.\n", "yellow")
        if self.state == "running":
            t.append("running… measuring before and after", "italic")
        elif self.state == "error":
            t.append("The step could not run: ", "bold red")
            t.append(self.error or "", "red")
            t.append("  (r restarts)", "dim")
        elif self.state == "finished" or (self.state == "done" and self.next_title is None):
            t.append("That was the last step: r starts again, q quits.", "bold")
        elif self.state == "done":
            t.append(f"Next (n / space): {self.next_title}", "dim" if not self.big else "bold")
        return t

    def _show(self) -> None:
        self.update(self.text())


def lecture_help() -> Table:
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold cyan", no_wrap=True)
    t.add_column()
    t.add_row(Text("Lecture keys", style="bold underline"), "")
    for k, d in KEYS:
        t.add_row(k, d)
    t.add_row("", "")
    t.add_row(
        Text("Page map", style="bold underline"),
        "the step's own pages, one per cell when they fit; a cell of several pages shows the most "
        "significant one (dirty > swapped > anon > file > zero > absent)",
    )
    for s in LEGEND_ORDER:
        t.add_row(Text(f"  {s}  ", style=STATE_STYLE[s]), PAGE_STATES_HELP[s])
    t.add_row(Text("░", style="bold"), "the cell's pages are in several states")
    t.add_row(Text("*  !", style="bold"), "changed since the last refresh / faulted (perf sampling)")
    t.add_row("", "")
    t.add_row(
        Text("Evidence", style="bold underline"),
        "the step's faults (by mapping and function), its page-state changes and the numbers of its "
        "verdict; it stays until the next step. The writeback clock follows a file the lesson dirtied.",
    )
    return t


class LectureHelpScreen(HelpScreen):
    """``?`` in the lecture: the lecture's keys (the live view's help would name others)."""

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(lecture_help())


class ConfirmRestart(ModalScreen[bool]):
    """r: restarting throws the lecture's results away, so ask."""

    BINDINGS = [
        Binding("y,r,enter", "answer(True)", "Restart"),
        Binding("n,escape,q", "answer(False)", "Keep going"),
    ]
    DEFAULT_CSS = """
    ConfirmRestart { align: center middle; }
    ConfirmRestart > Static { width: 60; height: auto; border: thick $warning; background: $surface; padding: 1 2; }
    """

    def compose(self) -> ComposeResult:
        yield Static(
            Text.assemble(
                ("Restart the lecture?\n", "bold"),
                "A fresh workload from step 1; the steps run so far are forgotten.\n\n",
                ("y", "bold cyan"),
                " / r / Enter: restart    ",
                ("n", "bold cyan"),
                " / Esc: keep going",
            )
        )

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class JumpScreen(ModalScreen[int | None]):
    """g: type a step number, Enter jumps."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    JumpScreen { align: center middle; }
    JumpScreen > Vertical { width: 50; height: auto; border: thick $accent; background: $surface; padding: 0 1; }
    """

    def __init__(self, total: int) -> None:
        super().__init__()
        self.total = total

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(f"Jump to step (1-{self.total}), Enter", style="bold"))
            yield Input(placeholder="step number", id="jump", restrict=r"[0-9]*", max_length=3)

    def on_input_submitted(self, msg: Input.Submitted) -> None:
        text = msg.value.strip()
        if text.isdigit() and 1 <= int(text) <= self.total:
            self.dismiss(int(text))
        else:
            self.app.notify(f"a step number from 1 to {self.total}", severity="warning")

    def action_cancel(self) -> None:
        self.dismiss(None)
