"""The ``sas-router`` command line: one entry point for admins, supervisors and operators."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import typer
from sas_router.engine.plan import Plan, PlanError, load_plan
from sas_router.engine.plan.grammar import RenderRefused
from sas_router.engine.plan.render import write_rendered, write_secrets

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
    from sas_router.engine.plan.install import install

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


@app.command("run")
def run(
    plan: Path = typer.Option(..., "--plan", help="The site plan the engine routes with."),
    config: Path | None = typer.Option(None, "--config", help="Settings file (see config/engine.example.yaml)."),
) -> None:
    """Run the routing engine for one site: AMI link, call tracking, routing, control API."""
    import asyncio

    from sas_router.engine.api import ClientError, bind_clients
    from sas_router.engine.logs import configure_logging
    from sas_router.engine.runtime import Runtime, RuntimeConfig
    from sas_router.engine.settings import SettingsError, load_settings

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
        runtime = await Runtime(site_plan, clients, RuntimeConfig.from_settings(settings, plan_file=plan)).start()
        engine, api = runtime.engine, runtime.api
        base = f"http://{settings.http.host}:{settings.http.port}"
        typer.echo(f"sas-router engine for {site_plan.site.id}: AMI {settings.ami.host}:{settings.ami.port}, "
                   f"control API {base}, dashboard {base}/dashboard, metrics {base}/metrics (Ctrl-C stops it)")
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):  # SIGTERM: what systemd sends
            loop.add_signal_handler(signum, stopping.set)
        reloads: set[asyncio.Task[None]] = set()

        async def reload_on_hup() -> None:
            from sas_router.engine.reload import ReloadRefused

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
            await runtime.stop()
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
    from sas_router.engine.settings import SettingsError, load_settings, with_journal_password
    from sas_router.supervision.journal import JournalMissing, open_existing_journal
    from sas_router.supervision.report import monthly, parse_month, render_table, to_csv

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


def _add_tool_commands() -> None:
    """Commands other parts of the project bring (the simulator's: softswitch, simulate,
    sip-load, capacity), found through the ``sas_router.commands`` entry points, so the
    production engine never imports the simulator."""
    from importlib.metadata import entry_points

    for entry in entry_points(group="sas_router.commands"):
        try:
            register = entry.load()
        except ImportError as exc:  # installed without its extra: say how to get it
            app.command(entry.name, help=f"(needs sas-router[{entry.name}])")(_needs_extra(entry.name, exc.name or ""))
            continue
        register(app)


def _needs_extra(extra: str, missing: str) -> Callable[[], None]:
    def command() -> None:
        typer.echo(f"these commands need: pip install 'sas-router[{extra}]' ({missing} is missing)", err=True)
        raise typer.Exit(code=1)
    return command


_add_tool_commands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
