"""The ``sas-router`` command line: one entry point for admins, supervisors and operators."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import NoReturn

import typer

from engine.plan import Plan, PlanError, load_plan
from engine.plan.grammar import RenderRefused
from engine.plan.render import write_rendered, write_secrets

app = typer.Typer(help="sas-router: call routing for SAS (Service d'Accès aux Soins) switchboards.",
                  no_args_is_help=True, add_completion=False)
plan_app = typer.Typer(help="Check and render site plans (dialplans/*.yaml).", no_args_is_help=True)
app.add_typer(plan_app, name="plan")


@plan_app.command("check")
def plan_check(files: list[Path] = typer.Argument(..., help="Plan files to validate.")) -> None:
    """Validate plan files; every problem is listed with its file, line and column."""
    failed = 0
    for file in files:
        try:
            plan = load_plan(file)
        except PlanError as exc:
            failed += 1
            for diagnostic in exc.diagnostics:
                typer.echo(str(diagnostic), err=True)
            count = len(exc.diagnostics)
            typer.echo(f"{file}: {count} error{'s' if count > 1 else ''}; the plan is refused", err=True)
            continue
        typer.echo(f"{file}: OK — site {plan.site.id} ({plan.site.name}): {len(plan.lines)} lines, "
                   f"{len(plan.queues)} queues, {len(plan.partners)} partners")
    if failed:
        raise typer.Exit(code=1)


@plan_app.command("render")
def plan_render(
    file: Path = typer.Argument(..., help="Plan file to render."),
    out: Path = typer.Option(..., "--out", help="Directory for the Asterisk files."),
) -> None:
    """Render the Asterisk configuration (extensions, queues, manager, pjsip) for one plan."""
    plan = _load_or_exit(file, f"nothing was written to {out}")
    try:
        paths = write_rendered(plan, out)
    except RenderRefused as exc:
        _refuse(file, [str(exc)], f"nothing was written to {out}")
    for path in paths:
        typer.echo(f"wrote {path}")


def _load_or_exit(file: Path, consequence: str = "") -> Plan:
    try:
        return load_plan(file)
    except PlanError as exc:
        _refuse(file, [str(d) for d in exc.diagnostics], consequence)


def _refuse(file: Path, problems: list[str], consequence: str) -> NoReturn:
    """Every problem on its own line, then what was not done; exit code 1."""
    for problem in problems:
        typer.echo(problem, err=True)
    typer.echo(f"{file}: refused" + (f"; {consequence}" if consequence else ""), err=True)
    raise typer.Exit(code=1)


@plan_app.command("install")
def plan_install(
    file: Path = typer.Argument(..., help="Plan file to install."),
    etc: Path = typer.Option(Path("/etc/asterisk"), "--etc", help="Asterisk's configuration directory."),
) -> None:
    """Render into <etc>/<site-id>/, create the secrets if missing, and #include the rendered files
    from the PBX's own extensions.conf, pjsip.conf, queues.conf, manager.conf, rtp.conf, modules.conf.

    Existing files only gain include lines; nothing of the PBX's own configuration is replaced."""
    from engine.plan.install import install

    plan = _load_or_exit(file)
    try:
        done = install(plan, etc)
    except RenderRefused as exc:
        _refuse(file, [str(exc)], f"nothing was installed in {etc}")
    for line in done:
        typer.echo(line)


@plan_app.command("secrets")
def plan_secrets(
    file: Path = typer.Argument(..., help="Plan file whose desks get passwords."),
    out: Path = typer.Option(..., "--out", help="The site's directory on the Asterisk host, e.g. "
                                               "/etc/asterisk/sas-69 (files are created mode 0600)."),
) -> None:
    """Write the AMI secret and one password per declared desk, keeping those already issued.

    Run it on the Asterisk host, never in the repository: the passwords must not be committed."""
    plan = _load_or_exit(file)
    for path in write_secrets(plan, out):
        typer.echo(f"wrote {path} (mode 0600)")


@app.command("softswitch")
def softswitch(
    plan: Path = typer.Option(..., "--plan", help="Site plan whose rendered dialplan the emulator runs."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (loopback by default)."),
    port: int = typer.Option(5038, help="AMI port."),
    username: str = typer.Option("sas-router", help="AMI user the engine logs in as."),
    secret: str = typer.Option(..., envvar="SAS_AMI_SECRET", prompt=False,
                               help="AMI secret (or SAS_AMI_SECRET); never logged."),
    control_port: int | None = typer.Option(None, "--control-port",
                                            help="Also serve the emulator's control API (calls, desks, faults)."),
    control_token: str = typer.Option("", "--control-token", envvar="SAS_SOFTSWITCH_TOKEN",
                                      help="Bearer token of the control API (or SAS_SOFTSWITCH_TOKEN)."),
    newexten: bool = typer.Option(True, "--newexten/--no-newexten",
                                  help="Publish Newexten events (a real site often filters them out)."),
) -> None:
    """Run the Asterisk 22 softswitch emulator for one site, speaking AMI over TCP."""
    import asyncio

    from engine.logs import configure_logging
    from simulator.softswitch.clock import Scheduler
    from simulator.softswitch.control import SoftswitchControl, serve_control
    from simulator.softswitch.server import AmiServer, User
    from simulator.softswitch.site import ami_users, build_site

    if control_port is not None and len(control_token) < 8:
        typer.echo("--control-port needs --control-token (or SAS_SOFTSWITCH_TOKEN) of 8 characters or more",
                   err=True)
        raise typer.Exit(code=2)
    configure_logging("console")

    async def serve() -> None:
        site_plan = load_plan(plan)
        switch = build_site(site_plan, Scheduler(virtual=False))
        switch.newexten_events = newexten
        # The AMI users of the rendered manager.conf (classes, event filters), as a real Asterisk;
        # a user the file does not name gets every event.
        users = ami_users(site_plan, {username: secret})
        server = AmiServer(switch, users or {username: User(secret)})
        bound = await server.start(host, port)
        typer.echo(f"softswitch for {switch.system_name} listening for AMI on {host}:{bound} (Ctrl-C stops it)")
        runner = None
        if control_port is not None:
            runner = await serve_control(SoftswitchControl(server, control_token), host, control_port)
            typer.echo(f"control API on http://{host}:{runner.addresses[0][1]} (bearer token required)")
        try:
            await asyncio.Event().wait()
        finally:
            if runner is not None:
                await runner.cleanup()
            await server.stop()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        typer.echo("softswitch stopped")


@app.command("run")
def run(
    plan: Path = typer.Option(..., "--plan", help="The site plan the engine routes with."),
    config: Path | None = typer.Option(None, "--config", help="Settings file (see config/engine.example.yaml)."),
) -> None:
    """Run the routing engine for one site: AMI link, call tracking, routing, control API."""
    import asyncio

    from engine.api import ClientError, ControlApi, bind_clients, serve
    from engine.logs import configure_logging
    from engine.service import EngineOptions, make_engine
    from engine.settings import SettingsError, load_settings

    try:
        settings = load_settings(config)
        site_plan = load_plan(plan)
        clients = settings.api_clients()
        bind_clients(clients, site_plan)
    except (SettingsError, PlanError, ClientError) as exc:
        for line in getattr(exc, "diagnostics", [exc]):
            typer.echo(str(line), err=True)
        raise typer.Exit(code=1) from None
    if not settings.ami.secret.get_secret_value():
        typer.echo("no AMI secret: set SAS_AMI_SECRET", err=True)
        raise typer.Exit(code=1)
    if not clients:
        typer.echo("warning: no API token configured (SAS_API_TOKENS); every control request will be refused",
                   err=True)
    configure_logging(settings.log_format)

    async def main_loop() -> str | None:
        from supervision.journal import Journal
        from supervision.service import Supervision

        engine = make_engine(site_plan, host=settings.ami.host, port=settings.ami.port,
                             username=settings.ami.username, secret=settings.ami.secret.get_secret_value(),
                             options=EngineOptions(confirm_within=settings.confirm_transfer_within,
                                                   action_timeout=settings.ami.action_timeout,
                                                   apply_presets=settings.apply_presets,
                                                   partner_stale_after=settings.mqtt.partner_stale_after),
                             mqtt=settings.mqtt.config())
        api = ControlApi(engine, clients, plan_file=plan, switch_config=settings.switch_config)
        journal = Journal(settings.journal.url(), site_plan.site.id, max_buffer=settings.journal.max_buffer)
        supervision = Supervision(engine, journal=journal)
        supervision.install(api)
        await supervision.start()
        await engine.start()
        runner = await serve(api, settings.http.host, settings.http.port)
        base = f"http://{settings.http.host}:{settings.http.port}"
        typer.echo(f"sas-router engine for {site_plan.site.id}: AMI {settings.ami.host}:{settings.ami.port}, "
                   f"control API {base}, dashboard {base}/dashboard, metrics {base}/metrics (Ctrl-C stops it)")
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):  # SIGTERM: what systemd sends
            loop.add_signal_handler(signum, stopping.set)
        reloads: set[asyncio.Task[None]] = set()

        async def reload_on_hup() -> None:
            from engine.reload import ReloadRefused

            try:
                result = await api.reload_plan()
                typer.echo(f"plan reloaded: {result['changes'] or 'no change'}")
            except ReloadRefused as exc:
                typer.echo("plan reload refused; the running plan stays:\n  " + "\n  ".join(exc.problems), err=True)
            except Exception:  # a failed reload must never stop the engine
                engine.log.exception("plan reload failed; the running plan stays")

        def on_hup() -> None:  # systemctl reload sas-router: re-read the plan file
            task = asyncio.ensure_future(reload_on_hup())
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        loop.add_signal_handler(signal.SIGHUP, on_hup)
        try:
            waiters = [asyncio.ensure_future(stopping.wait()), asyncio.ensure_future(engine.refused.wait())]
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()
        finally:
            await runner.cleanup()
            await supervision.stop()
            await engine.stop()
        return engine.refusal

    refusal = asyncio.run(main_loop())
    if refusal:
        typer.echo(f"sas-router: refused to start: {refusal}", err=True)
        raise typer.Exit(code=1)
    typer.echo("engine stopped")


report_app = typer.Typer(help="Annex-3 indicator reports from the call journal.", no_args_is_help=True)
app.add_typer(report_app, name="report")


@report_app.command("monthly")
def report_monthly(
    month: str = typer.Option(..., "--month", help="The month, YYYY-MM."),
    plan: Path = typer.Option(Path("dialplans/sas-69.yaml"), "--plan", help="The site plan (hours, holidays)."),
    db: str = typer.Option("", "--db", envvar="SAS_JOURNAL_URL",
                           help="Journal database URL (default: the settings' journal, else var/journal.sqlite3)."),
    config: Path | None = typer.Option(None, "--config", help="Settings file, for the journal URL."),
    baseline: int | None = typer.Option(None, "--baseline", help="Compare with the same month of this year."),
    csv_out: Path | None = typer.Option(None, "--csv", help="Also write the table as CSV to this file."),
) -> None:
    """Annex-3 table 1 and table-3 telephony rows for one month, restricted to SAS hours."""
    from engine.settings import SettingsError, load_settings, with_journal_password
    from supervision.journal import JournalMissing, open_existing_journal
    from supervision.report import monthly, parse_month, render_table, to_csv

    try:
        year, number = parse_month(month)
        site_plan = load_plan(plan)
        url = with_journal_password(db) if db else load_settings(config).journal.url()
        database = open_existing_journal(url)
    except (ValueError, PlanError, SettingsError, JournalMissing) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=1) from None
    try:
        report = monthly(database, site_plan, year, number)
        compared = monthly(database, site_plan, baseline, number) if baseline else None
    finally:
        database.dispose()
    typer.echo(render_table(report, compared), nl=False)
    if csv_out is not None:
        csv_out.write_text(to_csv(report, compared), encoding="utf-8")
        typer.echo(f"wrote {csv_out}")


@app.command("simulate")
def simulate(
    plan: Path = typer.Option(Path("dialplans/sas-69.yaml"), "--plan", help="The site plan."),
    day: str = typer.Option("2026-11-24", "--day", help="Local date the simulated day starts (YYYY-MM-DD)."),
    hours: float = typer.Option(24.0, "--hours", min=0.1, max=24 * 7, help="Length of the simulated period."),
    start_hour: float = typer.Option(0.0, "--from", min=0, max=23.99, help="Local hour the period starts at."),
    calls: float = typer.Option(3000.0, "--calls-per-day", min=1, help="Calls on an ordinary weekday."),
    surge: float = typer.Option(1.0, "--surge", min=0.1, max=20, help="Multiplier on every arrival rate."),
    seed: int = typer.Option(1, "--seed", help="Same seed, same calls."),
    real_time: bool = typer.Option(False, "--real-time", help="Run on the wall clock from now (the live demo)."),
    token: str = typer.Option("", "--token", envvar="SAS_SIM_TOKEN",
                              help="Supervisor token for the dashboard (default: a random one, printed)."),
    plot: Path | None = typer.Option(None, "--plot", help="Write the day's figures to this PNG."),
    journal: str = typer.Option("", "--journal", help="Journal database URL (default: none)."),
    port: int = typer.Option(0, "--port", help="Control API, dashboard and /metrics port (0: any free one)."),
    partner: Path | None = typer.Option(None, "--partner",
                                        help="A partner SAS's plan: emulated too, joined by its trunk; overflow on."),
    partner_desks: int = typer.Option(3, "--partner-desks", min=1, max=200, help="Desks in each partner queue."),
    unplanned_surge: bool = typer.Option(False, "--unplanned-surge",
                                         help="Staff for the ordinary day: the surge is a surprise, as overflow "
                                              "is for (default: staffing follows the surge)."),
) -> None:
    """A SAS day through the real engine: callers, desks, qualifications, transfers, staffing by hour."""
    import asyncio
    import time

    from engine.logs import configure_logging
    from simulator.day import DaySimulation, plot_day
    from simulator.load import LoadProfile, local_midnight, staffing_for

    try:
        site_plan = load_plan(plan)
        partner_plan = load_plan(partner) if partner is not None else None
        start = time.time() if real_time else local_midnight(site_plan, day) + start_hour * 3600
    except (ValueError, PlanError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=1) from None
    configure_logging("console", level=40)
    profile = LoadProfile(calls_per_day=calls, surge=surge)
    ordinary = LoadProfile(calls_per_day=calls)
    staffing = (lambda at: staffing_for(site_plan, ordinary, at)) if unplanned_surge else None

    async def go() -> None:
        sim = DaySimulation(site_plan, plan, profile, start=start, duration=hours * 3600, seed=seed,
                            fast=not real_time, http_port=port, journal_url=journal or None, progress=True,
                            token=token or None, partner=partner_plan, partner_desks=partner_desks,
                            staffing=staffing)
        try:
            try:
                site = await sim.open()
            except ValueError as exc:  # e.g. a --partner that is not a partner in the plans
                typer.echo(str(exc), err=True)
                raise typer.Exit(code=1) from None
            typer.echo(f"{len(sim.calls)} calls to place; dashboard {site.base_url}/dashboard "
                       f"(token {sim.token}), metrics {site.base_url}/metrics", err=True)
            result = await sim.run()
        finally:
            await sim.close()
        typer.echo(result.report(), nl=False)
        if plot is not None:
            typer.echo(f"plot written to {plot_day(result, plot)}")

    try:
        asyncio.run(go())
    except KeyboardInterrupt:
        typer.echo("simulation stopped")


@app.command("sip-load")
def sip_load(
    server: str = typer.Option(..., "--server", help="The Asterisk's SIP address (UDP)."),
    port: int = typer.Option(5060, "--port", help="The Asterisk's SIP port."),
    source: str = typer.Option(..., "--from-address",
                               help="This machine's address; it must be in the plan's sip.operator.match, so "
                                    "Asterisk takes the calls as the operator trunk's."),
    plan: Path = typer.Option(Path("dialplans/sas-69.yaml"), "--plan", help="The site plan (its lines' numbers)."),
    day: str = typer.Option("2026-11-24", "--day", help="Local date whose profile is played (YYYY-MM-DD)."),
    start_hour: float = typer.Option(10.0, "--from", min=0, max=23.99, help="Local hour the period starts at."),
    hours: float = typer.Option(1.0, "--hours", min=0.01, max=24, help="Length of the period."),
    calls: float = typer.Option(3000.0, "--calls-per-day", min=1, help="Calls on an ordinary weekday."),
    speed: float = typer.Option(1.0, "--speed", min=0.01, max=10, help="Wall seconds per simulated second."),
    seed: int = typer.Option(1, "--seed", help="Same seed, same calls."),
) -> None:
    """Real SIP calls into a real Asterisk from the operator trunk's address, from the load
    simulator's caller model: one caller ID per caller, each held for its patience and talk time."""
    import asyncio

    from engine.logs import configure_logging
    from simulator.load import LoadProfile, local_midnight, plan_day
    from simulator.sip_driver import SipLoad, summary

    configure_logging("console")
    try:
        site_plan = load_plan(plan)
        start = local_midnight(site_plan, day) + start_hour * 3600
    except (ValueError, PlanError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=1) from None
    profile = LoadProfile(calls_per_day=calls)
    planned = plan_day(site_plan, profile, start, hours * 3600, seed)
    typer.echo(f"{len(planned)} calls to place on {server}:{port} from {source}")
    load = SipLoad((server, port), source, profile, speed=speed)
    try:
        outcomes = asyncio.run(load.run(planned))
    except KeyboardInterrupt:
        outcomes = load.outcomes
    states = summary(outcomes)
    typer.echo(f"placed {len(outcomes)}: " + ", ".join(f"{k} {v}" for k, v in sorted(states.items())))
    if states.get("dropped") or states.get("refused"):
        raise typer.Exit(code=2)


@app.command("capacity")
def capacity(
    calls_per_hour: float = typer.Option(..., "--calls-per-hour", min=0.1, help="Arrivals in the busy hour."),
    handle: float = typer.Option(..., "--handle", min=1, help="Mean handle time in seconds."),
    target: float = typer.Option(0.9, "--target", min=0.01, max=0.9999, help="QS30 to reach (share of answered)."),
    threshold: float = typer.Option(30.0, "--within", min=1, help="Seconds of the service level (30 for QS30)."),
    patience: float | None = typer.Option(None, "--patience", min=1, help="Mean patience (s): Erlang A."),
    agents: int | None = typer.Option(None, "--agents", min=1, help="Forecast this staffing instead."),
    plan: Path | None = typer.Option(None, "--plan", help="With --day: desks per queue for each hour."),
    day: str = typer.Option("2026-11-24", "--day", help="Local date for the per-hour staffing (with --plan)."),
    calls_per_day: float = typer.Option(3000.0, "--calls-per-day", min=1, help="With --plan: daily calls."),
) -> None:
    """Erlang C (or A with --patience): desks needed for a QS30 target, or the QS30 of a staffing."""
    from simulator.capacity import Queue, agents_needed, erlang_a_forecast
    from simulator.load import LoadProfile, local_midnight, staffing_for

    queue = Queue(calls_per_hour, handle, patience)
    try:
        result = erlang_a_forecast(queue, agents, threshold) if agents else agents_needed(queue, target, threshold)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=1) from None
    model = "Erlang A" if patience else "Erlang C"
    figures = result.public()
    typer.echo(f"{model}: {calls_per_hour:g} calls/h, {handle:g} s handle, load {figures['load']} Erlang")
    typer.echo(f"  {result.agents} desks: answered within {threshold:g} s {result.service_level:.1%}, "
               f"wait probability {result.wait_probability:.1%}, mean wait {figures['mean_wait']} s, "
               f"occupancy {result.occupancy:.0%}" + (f", abandons {result.abandon_rate:.1%}" if patience else ""))
    if plan is not None:
        site_plan = load_plan(plan)
        midnight = local_midnight(site_plan, day)
        profile = LoadProfile(calls_per_day=calls_per_day)
        queues = list(site_plan.queues)
        typer.echo(f"desks per hour for {site_plan.site.id} on {day} ({calls_per_day:g} calls/day):")
        typer.echo("  hour  " + " ".join(f"{q:>7}" for q in queues))
        for hour in range(24):
            wanted = staffing_for(site_plan, profile, midnight + hour * 3600 + 1)
            typer.echo(f"  {hour:02d}h   " + " ".join(f"{wanted[q]:>7}" for q in queues))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
