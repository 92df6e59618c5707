#!/usr/bin/env bash
# The demo: validate both example site plans and render their Asterisk configuration.
set -euo pipefail
cd "$(dirname "$0")/.."
SAS=.venv/bin/sas-router
echo "== sas-router plan check: the two example sites"
$SAS plan check dialplans/sas-69.yaml dialplans/sas-38.yaml
echo
echo "== sas-router plan render: Asterisk configuration into var/demo/"
for site in sas-69 sas-38; do $SAS plan render "dialplans/$site.yaml" --out "var/demo/$site"; done
echo
echo "== the emulated Rhône switchboard (Asterisk 22 stand-in) routing calls with no engine attached"
.venv/bin/python -m simulator.demo_call
echo
echo "== the routing engine on the emulated switchboard: desks qualify and transfer through the API"
if [ "${DEMO_ONCE:-0}" = "1" ]; then
  .venv/bin/python -m simulator.demo_live --once --port 0
else
  .venv/bin/python -m simulator.demo_live --port "${DEMO_PORT:-8080}"
fi
