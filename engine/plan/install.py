"""Put a rendered site into an Asterisk configuration directory without taking it over.

A SAS often runs on a PBX that already has its own ``extensions.conf``, ``pjsip.conf`` and
``manager.conf``. The rendered files therefore live in ``<etc>/<site-id>/`` and the PBX's own
files only gain ``#include`` lines: appended at the end for the files that add sections, placed
inside the section for the files that add settings to ``[general]``/``[modules]``. A file the PBX
does not have yet is created with the minimum around the include, which is also how the tests and
the demo build a private Asterisk: the same step an admin runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sas_router.engine.plan.model import Plan
from sas_router.engine.plan.render import write_rendered, write_secrets


@dataclass(frozen=True)
class Include:
    """One rendered file and where the PBX's own file includes it."""

    host_file: str
    rendered: str
    #: The section the include goes inside; None: at the end of the file.
    section: str | None
    #: What a new host file holds before the include (a PBX without that file yet).
    preamble: str


INCLUDES = (
    Include("extensions.conf", "extensions.conf", None,
            "[general]\nstatic=yes\nwriteprotect=yes\nclearglobalvars=no\n\n[globals]\n\n"),
    Include("queues.conf", "queues-general.conf", "general", ""),
    Include("queues.conf", "queues.conf", None, ""),
    Include("pjsip.conf", "pjsip.conf", None, "[global]\ntype = global\nuser_agent = Asterisk SAS\n\n"),
    Include("manager.conf", "manager.conf", None,
            "[general]\nenabled = yes\nport = 5038\nbindaddr = 127.0.0.1\ndisplayconnects = no\n\n"),
    Include("rtp.conf", "rtp.conf", "general", ""),
    Include("modules.conf", "modules.conf", "modules", ""),
)


def include_line(plan: Plan, include: Include) -> str:
    return f"#include {plan.site.id}/{include.rendered}"


def _add_include(text: str, line: str, section: str | None) -> str:
    if re.search(rf"^\s*{re.escape(line)}\s*$", text, re.M):
        return text
    if section is None:
        return text + ("" if text.endswith("\n") or not text else "\n") + line + "\n"
    header = re.search(rf"^\[{re.escape(section)}\][^\n]*\n", text, re.M)
    if header is None:
        return text + ("" if text.endswith("\n") or not text else "\n") + f"[{section}]\n{line}\n\n"
    return text[:header.end()] + line + "\n" + text[header.end():]


def install(plan: Plan, etc: Path, *, modules_autoload: bool = True) -> list[str]:
    """Render ``plan`` into ``etc/<site>``, create its secrets if missing, and add the includes.

    Returns what was done, one line each, for the admin to read. ``modules_autoload=False`` makes
    a new ``modules.conf`` load only what the site needs (the test switch uses it, so a module
    missing from the rendered list fails a test instead of being loaded by chance)."""
    site_dir = etc / plan.site.id
    done = [f"rendered {path}" for path in write_rendered(plan, site_dir)]
    if not (site_dir / "manager-secret.conf").exists() or not (site_dir / "desk-secrets.conf").exists():
        done += [f"secrets {path} (mode 0600)" for path in write_secrets(plan, site_dir)]
    for include in INCLUDES:
        host = etc / include.host_file
        if host.exists():
            before = host.read_text(encoding="utf-8")
        else:
            before = include.preamble
            if include.host_file == "modules.conf":
                before = f"[modules]\nautoload = {'yes' if modules_autoload else 'no'}\n"
        after = _add_include(before, include_line(plan, include), include.section)
        if after != before or not host.exists():
            host.write_text(after, encoding="utf-8")
            where = f"inside [{include.section}]" if include.section else "at the end"
            done.append(f"{host}: {include_line(plan, include)} ({where})")
    return done
