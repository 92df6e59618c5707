#!/usr/bin/env bash
# The demo: the two example site plans checked and rendered, calls through the emulated switch
# without and with the engine, the same calls on a real Asterisk 22 when one is available, then a
# live SAS under simulated load with its supervisors' dashboard.
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
.venv/bin/python -m sas_router.simulator.demo_call
echo
echo "== the routing engine on the emulated switchboard: desks qualify and transfer through the API"
.venv/bin/python -m sas_router.simulator.demo_live --once --port 0
echo
echo "== the same on a real Asterisk 22 with SIP phones and SIP callers (SAS_ASTERISK, or the shared tarball)"
.venv/bin/python -m sas_router.simulator.demo_real
echo
echo "== capacity: desks needed per hour for the Rhône's day (Erlang C)"
$SAS capacity --calls-per-hour 190 --handle 60 --plan dialplans/sas-69.yaml
echo
TOKEN=${SAS_SIM_TOKEN:-demo-supervisor}
PORT=${DEMO_PORT:-8080}
if [ "${DEMO_ONCE:-0}" = "1" ]; then
  echo "== a simulated morning hour of the Rhône, fast-forward through the real engine"
  $SAS simulate --day 2026-11-24 --from 10 --hours 1 --plot var/demo/morning.png
else
  echo "== live: the Rhône under a busy day's load, in real time. Open the dashboard:"
  echo "   http://127.0.0.1:$PORT/dashboard   token: $TOKEN   (metrics: http://127.0.0.1:$PORT/metrics)"
  echo "   Ctrl-C stops everything."
  $SAS simulate --real-time --hours 24 --calls-per-day 12000 --port "$PORT" --token "$TOKEN" \
      --journal sqlite:///var/demo/journal.sqlite3
fi
