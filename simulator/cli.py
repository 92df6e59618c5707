"""The simulator's commands for ``sas-router``: the Asterisk emulator, a simulated SAS day, SIP
load and capacity planning. Registered through the ``sas_router.commands`` entry point: a
production install without the ``sim`` extra never imports this module's heavy dependencies."""

from __future__ import annotations

from pathlib import Path

import typer
from sas_router.engine.plan import PlanError, load_plan


def register(app: typer.Typer) -> None:
    """Add the simulator's commands to the ``sas-router`` command line."""
    app.command("softswitch")(softswitch)
    app.command("simulate")(simulate)
    app.command("sip-load")(sip_load)
    app.command("capacity")(capacity)


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

    from sas_router.engine.logs import configure_logging
    from sas_router.simulator.softswitch.clock import Scheduler
    from sas_router.simulator.softswitch.control import SoftswitchControl, serve_control
    from sas_router.simulator.softswitch.server import AmiServer, User
    from sas_router.simulator.softswitch.site import ami_users, build_site

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

    from sas_router.engine.logs import configure_logging
    from sas_router.simulator.day import DaySimulation, plot_day
    from sas_router.simulator.load import LoadProfile, local_midnight, staffing_for

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

    from sas_router.engine.logs import configure_logging
    from sas_router.simulator.load import LoadProfile, local_midnight, plan_day
    from sas_router.simulator.sip_driver import SipLoad, summary

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
    from sas_router.simulator.capacity import Queue, agents_needed, erlang_a_forecast
    from sas_router.simulator.load import LoadProfile, local_midnight, staffing_for

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
