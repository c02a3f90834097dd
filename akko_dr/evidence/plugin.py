"""pytest plugin: records every BDD scenario and writes ``reports/<run-id>/`` evidence.

Writes ``report.html`` (pytest-html, self-contained), ``results.json``, ``junit.xml``, ``cucumber.json``
and points ``reports/latest`` at the run; then (``finish``) the history, ``metrics.prom``,
``audit-report.html`` and its PDF, and seals the folder with a signed, chained ``manifest.json``.
Steps add figures through the ``evidence`` fixture.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from akko_dr.errors import Inconclusive, NotApplicable, PolicyError, is_harness_bug
from akko_dr.evidence import context, exports, html, integrity, interrupt, provenance, redact, register
from akko_dr.evidence.finish import Finishing, finish
from akko_dr.evidence.record import RunRecord, ScenarioRecord, one_line
from akko_dr.measure import utcnow
from akko_dr.policy import Policy, load_policy
from akko_dr.targets import new_run_id

RUN = pytest.StashKey[RunRecord]()
SCENARIO = pytest.StashKey[ScenarioRecord]()
_STEP_T0 = pytest.StashKey[float]()
_PYTEST_MARKS = {"parametrize", "usefixtures", "skip", "skipif", "xfail", "filterwarnings"}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("akko-dr", "AKKO DR evidence")
    group.addoption("--evidence-dir", default="reports",
                    help="where run folders are written (default: reports)")
    group.addoption("--signing-key", default=None,
                    help=f"Ed25519 private key (PEM) signing the evidence (or ${integrity.KEY_ENV}); "
                         "default: an ephemeral key for this run only (rehearsal)")
    group.addoption("--trigger", choices=context.TRIGGERS, default="quarterly",
                    help="why this test runs: quarterly (default), after-change or ad-hoc")
    group.addoption("--participant", action="append", default=None, metavar="'NAME (ROLE)'",
                    help=f"someone taking part; repeat (or ${context.PARTICIPANTS_ENV}, ';'-separated)")
    group.addoption("--no-audit-pdf", action="store_true", help="do not print the audit report to PDF")
    group.addoption("--findings-file", default=None, metavar="YAML",
                    help="severity, owner, due date, root cause and re-test of findings, keyed by "
                         "scenario or check id (absent: \"unassigned\")")
    group.addoption("--playbook", default=None, metavar="FILE",
                    help="the playbook document the policy came from: its sha256 goes in the manifest")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return
    base = Path(config.getoption("evidence_dir"))
    if not base.is_absolute():
        base = config.rootpath / base
    run_id = new_run_id()
    run = RunRecord(run_id=run_id, run_dir=base / run_id)
    config.stash[RUN] = run
    if not config.getoption("htmlpath", None):
        config.option.htmlpath = str(run.run_dir / "report.html")
    if not config.getoption("xmlpath", None):
        config.option.xmlpath = str(run.run_dir / "junit.xml")
    if not config.getoption("cucumber_json_path", None):
        config.option.cucumber_json_path = str(run.run_dir / "cucumber.json")
    config.option.self_contained_html = True
    try:
        signer = integrity.signer_for(config.getoption("signing_key"), base)
        owners = register.load(config.getoption("findings_file"))
    except (integrity.IntegrityError, PolicyError) as err:
        raise pytest.UsageError(str(err)) from None
    context.fill(run, config.getoption("trigger"), config.getoption("participant"),
                 config.getoption("policy", None), config.getini("markers"))
    plugin = EvidencePlugin(run, signer, not config.getoption("no_audit_pdf"))
    plugin.secrets, plugin.register = redact.snapshot(config.getoption("target_file", None)), owners
    plugin.interrupts.install()
    config.pluginmanager.register(plugin, "akko-dr-evidence")


def scenario_name(item: pytest.Item) -> str:
    """The scenario's name as the feature reads, its outline placeholders filled in."""
    doc = getattr(getattr(item, "function", None), "__doc__", None) or item.name
    name = doc.rpartition(": ")[2]
    example = getattr(getattr(item, "callspec", None), "params", {}).get("_pytest_bdd_example", {})
    for key, value in (example or {}).items():
        name = name.replace(f"<{key}>", str(value))
    return name


def judged_classes(items: list[pytest.Item]) -> dict[str, str]:
    """Drill -> the class its scenarios are tagged with (``@drill-3 @class-control-plane``)."""
    out: dict[str, str] = {}
    for item in items:
        names = [m.name for m in item.iter_markers()]
        drills = [n for n in names if n.startswith("drill-")]
        classes = [n.removeprefix("class-") for n in names if n.startswith("class-")]
        for drill in drills[:1]:
            if classes:
                out.setdefault(drill, classes[0])
    return out


def record_of(item: pytest.Item) -> ScenarioRecord:
    """The evidence record of a test item, created on first use."""
    if SCENARIO not in item.stash:
        item.stash[SCENARIO] = ScenarioRecord(nodeid=item.nodeid)
    return item.stash[SCENARIO]


@pytest.fixture(scope="session")
def run_record(pytestconfig: pytest.Config) -> RunRecord:
    """The run's evidence record: target, policy and components are filled in by the wiring."""
    return pytestconfig.stash[RUN]


@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> ScenarioRecord:
    """The current scenario's evidence record: steps add figures and provenance to it."""
    return record_of(request.node)


def pytest_bdd_before_scenario(request, feature, scenario) -> None:
    rec = record_of(request.node)
    rec.feature, rec.name = feature.name, scenario.name
    rec.feature_file = feature.rel_filename
    rec.tags = sorted(feature.tags | scenario.tags)
    rec.started_at = utcnow().isoformat()
    rec.steps = [rec.step(s.keyword, s.name) for s in scenario.steps]
    if rec not in request.config.stash[RUN].scenarios:
        request.config.stash[RUN].scenarios.append(rec)


def pytest_bdd_before_step(request, feature, scenario, step, step_func) -> None:
    request.node.stash[_STEP_T0] = time.monotonic()


def _finish_step(request, step, status: str, error: str = "") -> None:
    rec = record_of(request.node).step(step.keyword, step.name)
    rec.status, rec.error = status, error
    rec.duration_s = round(time.monotonic() - request.node.stash.get(_STEP_T0, time.monotonic()), 3)


def pytest_bdd_after_step(request, feature, scenario, step, step_func, step_func_args) -> None:
    _finish_step(request, step, "passed")


def pytest_bdd_step_error(request, feature, scenario, step, step_func, step_func_args, exception) -> None:
    _finish_step(request, step, gap_status(exception) or "failed", one_line(exception))


def gap_status(exc: BaseException | None) -> str | None:
    """The coverage-gap status a step's exception stands for (None: a real failure or none)."""
    if isinstance(exc, NotApplicable):
        return "not-applicable"
    if isinstance(exc, Inconclusive):
        return "inconclusive"
    return None


def _as_gap(item: pytest.Item, report: pytest.TestReport, call: pytest.CallInfo) -> str | None:
    """Turn a NotApplicable or Inconclusive step into a skipped test with its reason."""
    status = gap_status(call.excinfo.value if call.excinfo else None)
    if status and report.when in ("setup", "call"):
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {one_line(call.excinfo.value)}")
    return status


def pytest_bdd_step_func_lookup_error(request, feature, scenario, step, exception) -> None:
    _finish_step(request, step, "failed", f"no step definition: {step.keyword} {step.name}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if "_pytest_bdd_example" not in getattr(item, "fixturenames", ()):
        return
    rec = record_of(item)
    gap = _as_gap(item, report, call)
    if not rec.name and report.when == "setup" and not report.passed:  # never started: describe the item
        feature, _, name = (item.function.__doc__ or item.name).partition(": ")
        rec.feature, rec.name = feature, name or item.name
        rec.tags = sorted(m.name for m in item.iter_markers() if m.name not in _PYTEST_MARKS)
        item.config.stash[RUN].scenarios.append(rec)
    if report.when == "call" or (report.when == "setup" and not report.passed):
        rec.status = "skipped" if report.skipped else ("passed" if report.passed else "failed")
        rec.status = gap or rec.status
        if gap or (call.excinfo is not None and not report.skipped):
            rec.error = one_line(call.excinfo.value)
        elif report.skipped and call.excinfo is not None:
            rec.error = str(getattr(call.excinfo.value, "msg", call.excinfo.value))
        report.akko_status, report.akko_reason = rec.status, rec.error  # for the console's one line
        if call.excinfo is not None and is_harness_bug(call.excinfo.value):
            _harness_bug(item.config.stash[RUN], rec, report)
    if report.when == "call":
        report.akko_figures = html.figures_cell(rec)
    if report.when == "teardown":
        rec.finished_at = utcnow().isoformat()
        if not report.passed and rec.status == "passed":
            rec.status, rec.error = "failed", one_line(call.excinfo.value)
        report.user_properties.extend(exports.junit_properties(rec))  # JUnit reads the teardown report
        extras = getattr(report, "extras", [])
        pytest_html = item.config.pluginmanager.getplugin("html")
        if pytest_html is not None:
            extras.append(pytest_html.extras.html(html.scenario(rec)))
        report.extras = extras


def _harness_bug(run: RunRecord, rec: ScenarioRecord, report: pytest.TestReport) -> None:
    """A scenario ended by a defect of the harness: failed, named a harness error (never a refusal of the
    backup), and the run exits 2."""
    rec.error = f"harness error: {rec.error}"
    run.harness_errors.append(f"{rec.name or rec.nodeid}: {rec.error}")
    report.akko_status, report.akko_reason = "harness-error", rec.error


class EvidencePlugin:
    """Report-level hooks that need the run: title, summary, figures column, results.json, the seal."""

    def __init__(self, run: RunRecord, signer: integrity.Signer, pdf: bool = True) -> None:
        self.run, self.signer, self.pdf = run, signer, pdf
        self.secrets: dict[str, str] = {}
        self.register: dict[str, dict[str, str]] = {}
        self.interrupts = interrupt.Interrupts()
        self.titles: dict[str, str] = {}  # nodeid -> scenario name, in collection order
        self.finished: set[str] = set()
        self.current = ""
        self.session: pytest.Session | None = None
        self.html_report: object | None = None  # pytest-html's report data: its title is set again at the end

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.session = session

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Declare each drill's objectives and targets now: after collection, before the first scenario."""
        self.titles = {item.nodeid: scenario_name(item) for item in session.items}
        context.declare(self.run, session.config.getoption("policy", None), judged_classes(session.items))

    def pytest_runtest_logstart(self, nodeid: str, location: object) -> None:
        self.current = nodeid

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.finished.add(report.nodeid)  # it has a result: not "not run", even if its teardown is cut

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        not_run = [title for nodeid, title in self.titles.items() if nodeid not in self.finished]
        interrupt.mark(self.run, self.interrupts.signal, self.titles.get(self.current, ""), not_run)

    def pytest_html_report_title(self, report) -> None:
        self.html_report = report
        report.title = html.title(self.run)

    def pytest_html_results_summary(self, prefix, summary, postfix, session) -> None:
        """At the end, the title counts the scenarios as results.json does."""
        if self.html_report is not None:
            self.html_report.title = html.title(self.run)
        prefix.append(html.summary(self.run))

    def pytest_html_results_table_header(self, cells) -> None:
        cells.insert(2, "<th>RTO / RPO (measured / target)</th>")

    def pytest_html_results_table_row(self, report, cells) -> None:
        cells.insert(2, f"<td>{getattr(report, 'akko_figures', '')}</td>")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        run = self.run
        if not (run.scenarios or run.incomplete):
            return
        run.finished_at = utcnow().isoformat()
        if run.harness_errors:
            self._harness_error()
        run.write()
        latest = run.run_dir.parent / "latest"
        if latest.is_symlink() or latest.exists():
            latest.unlink()
        latest.symlink_to(run.run_dir.name)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """Once every writer (pytest-html, JUnit, Cucumber) is done: report, metrics, history, seal.

        A failure of this evidence step is a harness error: the exit code becomes 2.
        """
        self.interrupts.restore()
        if not (self.run.scenarios or self.run.incomplete):
            return
        try:
            fin, manifest = self._finish(config)
        except Exception as err:  # the run could not be sealed: say so, never exit as if it passed
            self._harness_error()
            self._say(config, f"akko-dr evidence step FAILED, the run is NOT sealed: {one_line(err)}", True)
            return
        steps = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in fin.timings.items() if k != "total")
        key = f"{self.signer.kind} key {self.signer.key_id}"
        self._say(config, f"akko-dr evidence sealed: {manifest} ({key}); "
                          f"evidence step {fin.timings['total'] * 1000:.0f} ms ({steps})")
        for failure in fin.failures:
            self._say(config, f"akko-dr evidence step FAILED: {failure}", True)
        if fin.failures:
            self._harness_error()

    def _finish(self, config: pytest.Config) -> tuple[Finishing, Path]:
        try:
            policy: Policy | None = load_policy(config.getoption("policy", None))
        except PolicyError:
            policy = None  # the audit report names the failure; the run is still sealed
        signed = provenance.signed(config.getoption("policy", None), config.getoption("playbook"),
                                   self.run.policy_version, self.run.participants)
        fin = Finishing(self.signer, policy, self.pdf, secrets=self.secrets, register=self.register,
                        signed=signed)
        return fin, finish(self.run, fin)

    def _harness_error(self) -> None:
        if self.session is not None and self.session.exitstatus in (pytest.ExitCode.OK,
                                                                    pytest.ExitCode.TESTS_FAILED):
            self.session.exitstatus = pytest.ExitCode.INTERRUPTED  # 2: a harness error, not a finding

    @staticmethod
    def _say(config: pytest.Config, line: str, error: bool = False) -> None:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(line, red=error, bold=error)
        else:
            print(line, file=sys.stdout, flush=True)
