#!/usr/bin/env bash
# CI smoke test of the fault-injection harness: three short runs against real dram processes,
#   1. register workload, partition + kill nemeses;
#   2. set workload, pause + transfer nemeses;
#   3. actions workload (agent actions through the control plane), 5 nodes, kill + pause, a fixed
#      10 s main phase and 5 s of recovery (about 35 s with the drain of the queue and the check);
# each printed as it goes, then a summary of the results.json files. Exits 1 if a run is invalid
# (a checker proved a violation), 2 if a run could not decide or the harness failed, 0 otherwise.
#
#   bash jepsen-like/smoke.sh            # defaults: 30 s per run, seeds 1 and 2
#   JEPSEN_SMOKE_TIME=60 JEPSEN_SMOKE_SEED=7 bash jepsen-like/smoke.sh
#
# Needs root (network namespace and iptables); installs iptables with apt-get when it is missing.
set -uo pipefail
cd "$(dirname "$0")/.."
time_s=${JEPSEN_SMOKE_TIME:-30}
seed=${JEPSEN_SMOKE_SEED:-1}
rate=${JEPSEN_SMOKE_RATE:-200}
runs_dir=${JEPSEN_RUNS_DIR:-jepsen-like/runs}

if ! command -v iptables >/dev/null; then
  echo "smoke: installing iptables" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iptables) >&2 || { echo "smoke: could not install iptables" >&2; exit 2; }
fi

worst=0
n_pass=0
n_fail=0
declare -a dirs=()
run_one() {
  local label=$1; shift
  echo "=== jepsen smoke: $label: $*"
  local before
  before=$(ls -1 "$runs_dir" 2>/dev/null | sort)
  npx --no-install tsx jepsen-like/cli.ts --runs-dir "$runs_dir" "$@"
  local code=$?
  local dir
  dir=$(comm -13 <(echo "$before") <(ls -1 "$runs_dir" 2>/dev/null | sort) | tail -1)
  [[ -n $dir ]] && dirs+=("$runs_dir/$dir")
  echo "=== jepsen smoke: $label: exit $code"
  if ((code == 0)); then n_pass=$((n_pass + 1)); else n_fail=$((n_fail + 1)); fi
  # invalid (1) outranks unknown (2): a proven violation is the worst news
  if ((code == 1)); then worst=1; elif ((code != 0 && worst != 1)); then worst=2; fi
}

run_one "register partition,kill" --workload register --nemesis partition,kill --time "$time_s" --rate "$rate" --seed "$seed"
run_one "set pause,transfer" --workload set --nemesis pause,transfer --time "$time_s" --rate "$rate" --seed "$((seed + 1))"
run_one "actions kill,pause" --workload actions --nemesis kill,pause --nodes 5 --time 10 --recovery 5 --liveness-grace 2 --seed "$((seed + 2))"

echo "=== jepsen smoke: summary"
for dir in "${dirs[@]}"; do
  [[ -f $dir/results.json ]] || { echo "$dir: no results.json"; continue; }
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const checkers = Object.entries(r.checkers).map(([n, c]) => `${n}=${c.verdict}`).join(" ");
    console.log(`${r.run.options.workload} seed ${r.run.options.seed} nemesis ${r.run.options.nemeses.join(",")}: ${r.verdict} | ops ${r.ops.total} (ok ${r.ops.ok}, fail ${r.ops.fail}, info ${r.ops.info}) | ${checkers} | ${process.argv[1].replace(/results.json$/, "report.html")}`);
  ' "$dir/results.json"
done
echo "jepsen smoke: $n_pass passed, $n_fail failed"
exit "$worst"
