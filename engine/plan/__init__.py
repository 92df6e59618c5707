"""The site plan: one YAML file per SAS, validated, and rendered into Asterisk configuration."""

from sas_router.engine.plan.loader import load_plan, parse_plan
from sas_router.engine.plan.model import Plan
from sas_router.engine.plan.source import Diagnostic, PlanError

__all__ = ["Diagnostic", "Plan", "PlanError", "load_plan", "parse_plan"]
