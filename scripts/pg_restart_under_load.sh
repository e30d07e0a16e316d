#!/usr/bin/env bash
# A PostgreSQL restart under load: while the database is away Latchkey must
# answer 503 with Retry-After (or succeed, on paths that need no database),
# never a 500 or a hang; once it is back, requests must succeed again within
# seconds, without restarting Latchkey.
#
#   scripts/pg_restart_under_load.sh
#
# It builds the release binary, creates a fresh database
# latchkey_restart_<pid> (psql as PG_USER on PG_HOST:PG_PORT), starts
# `latchkey serve` on it from an empty temporary folder (so no latchkey.toml
# is read), registers two clients with the CLI (a client_credentials robot
# holding latchkey:admin, and a first-party app) and signs the bootstrap
# admin in to the app once per worker (code flow with PKCE) for a refresh
# token family of its own. Then WORKERS threads (Python, standard library)
# cycle through:
#
#   jwks         GET  /jwks                      no database
#   cc_token     POST /token client_credentials  the client, cached a few seconds
#   introspect   POST /introspect                revocation check
#   userinfo     GET  /userinfo                  user and revocation reads
#   refresh      POST /token refresh_token       a write: rotates the family
#   admin_api    GET  /admin/api/v1/users        the admin token's holder check
#
# while the script stops the PostgreSQL cluster, waits DOWN_SECS, and starts
# it again (RESTART_MODE=restart: one `pg_ctlcluster restart` instead).
# Requests are counted by the phase they started in: before (until the stop
# begins), during (until PostgreSQL accepts connections again), after. A
# request that needs the database while it is away waits for a connection
# up to database.connect_timeout_secs (default 5) before its 503.
#
# It prints a table and exits non-zero if any answer was a 5xx other than
# 503, a 503 without Retry-After, any other unexpected answer (these are all
# valid requests: a 4xx is a wrong answer), no answer within REQUEST_TIMEOUT
# (a hang) or a refused/reset connection, or if a path that needs the
# database did not succeed steadily within RECOVERY_LIMIT seconds of
# PostgreSQL being back.
#
# It restarts the local PostgreSQL cluster (pg_ctlcluster, so run it as root
# or the cluster's owner): every other client of that server sees the outage
# too. On exit (also on failure or Ctrl-C) it makes sure the cluster is
# running again, stops the server it started and drops its database.
#
# Settings (environment): PG_HOST (127.0.0.1), PG_PORT (5432), PG_USER
# (postgres), PG_VERSION (the first in /etc/postgresql), PG_CLUSTER (main),
# WORKERS (8), BEFORE_SECS (8), DOWN_SECS (5), AFTER_SECS (35),
# REQUEST_TIMEOUT (15), RECOVERY_LIMIT (30), RESTART_MODE (stop-start),
# BINARY (skip the build and use this binary).
set -euo pipefail

PG_HOST="${PG_HOST:-127.0.0.1}"
PG_PORT="${PG_PORT:-5432}"
PG_USER="${PG_USER:-postgres}"
PG_VERSION="${PG_VERSION:-$(ls /etc/postgresql | sort -V | head -n 1)}"
PG_CLUSTER="${PG_CLUSTER:-main}"
WORKERS="${WORKERS:-8}"
BEFORE_SECS="${BEFORE_SECS:-8}"
DOWN_SECS="${DOWN_SECS:-5}"
AFTER_SECS="${AFTER_SECS:-35}"
REQUEST_TIMEOUT="${REQUEST_TIMEOUT:-15}"
RECOVERY_LIMIT="${RECOVERY_LIMIT:-30}"
RESTART_MODE="${RESTART_MODE:-stop-start}"

cd "$(dirname "$0")/.."
repo="$(pwd)"

if [ -z "${BINARY:-}" ]; then
    echo "== building the release binary"
    cargo build --release --bin latchkey
    BINARY="${CARGO_TARGET_DIR:-$repo/target}/release/latchkey"
fi
[ -x "$BINARY" ] || { echo "no binary at $BINARY" >&2; exit 2; }

work="$(mktemp -d -t latchkey-pg-restart.XXXXXX)"
db="latchkey_restart_$$"
server_pid=""

pg_running() {
    pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 1
}

psql_admin() {
    psql -X -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres "$@"
}

cleanup() {
    local status=$?
    set +e
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid"
        wait "$server_pid" 2>/dev/null
    fi
    if ! pg_running; then
        echo "== starting PostgreSQL $PG_VERSION/$PG_CLUSTER again"
        pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$PG_CLUSTER" start
        for _ in $(seq 1 60); do pg_running && break; sleep 0.5; done
    fi
    psql_admin -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1
    if [ "$status" -ne 0 ] && [ -f "$work/serve.log" ]; then
        echo "== last lines of the server log ($work/serve.log)"
        tail -n 20 "$work/serve.log"
    else
        rm -rf "$work"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pg_running || { echo "PostgreSQL is not accepting connections on $PG_HOST:$PG_PORT" >&2; exit 2; }
echo "== database $db on $PG_HOST:$PG_PORT (PostgreSQL $PG_VERSION/$PG_CLUSTER)"
psql_admin -c "CREATE DATABASE $db"

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
admin_password="restart-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
export LATCHKEY_DATABASE__URL="postgres://$PG_USER@$PG_HOST:$PG_PORT/$db"
export LATCHKEY_SERVER__BIND="127.0.0.1:$port"
export LATCHKEY_ISSUER="$base"
export LATCHKEY_KEK
LATCHKEY_KEK="$(head -c 32 /dev/urandom | base64)"
export LATCHKEY_ADMIN_PASSWORD="$admin_password"
# A client whose answer is lost in the outage may present its refresh
# token again (README: tokens.refresh_reuse_grace_secs).
export LATCHKEY_TOKENS__REFRESH_REUSE_GRACE_SECS=10
export LATCHKEY_LOG__LEVEL="${LATCHKEY_LOG__LEVEL:-warn}"
cd "$work"

echo "== latchkey serve on $base (log: $work/serve.log)"
"$BINARY" serve >"$work/serve.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "$base/readyz" 2>/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || { echo "latchkey serve exited" >&2; exit 1; }
    sleep 0.2
done
curl -fsS -o /dev/null "$base/readyz"

"$BINARY" client add --name "Restart robot" --grant-type client_credentials \
    --scope latchkey:admin --json >"$work/robot.json"
"$BINARY" client add --name "Restart app" --first-party \
    --redirect-uri "http://127.0.0.1:9/callback" --scope "openid offline_access" \
    --grant-type authorization_code --grant-type refresh_token --json >"$work/app.json"

cat >"$work/load.py" <<'PY'
"""Load for scripts/pg_restart_under_load.sh: setup, workers, the table."""
import base64, hashlib, http.client, http.cookiejar, json, os, re, secrets
import sys, threading, time, urllib.error, urllib.parse, urllib.request

BASE = os.environ["LOAD_BASE"]
HOST, PORT = urllib.parse.urlsplit(BASE).hostname, urllib.parse.urlsplit(BASE).port
TIMEOUT = float(os.environ["LOAD_TIMEOUT"])
ROBOT = json.load(open("robot.json"))
APP = json.load(open("app.json"))
CALLBACK = "http://127.0.0.1:9/callback"
DB_PATHS = ["introspect", "userinfo", "refresh", "admin_api"]
ENDPOINTS = ["jwks", "cc_token"] + DB_PATHS


def basic(client):
    raw = f"{client['client_id']}:{client['client_secret']}".encode()
    return "Basic " + base64.b64encode(raw).decode()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def sign_in_families(n):
    """The bootstrap admin signs in once; each worker gets its own grant."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
    html = opener.open(BASE + "/login", timeout=TIMEOUT).read().decode()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    form = urllib.parse.urlencode({"username": "admin", "password": os.environ["LOAD_ADMIN_PASSWORD"],
                                   "csrf_token": csrf}).encode()
    try:
        opener.open(BASE + "/login", form, timeout=TIMEOUT)
        raise SystemExit("sign-in did not redirect")
    except urllib.error.HTTPError as e:
        if e.code != 303:
            raise SystemExit(f"sign-in answered {e.code}")
    families = []
    for _ in range(n):
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        query = urllib.parse.urlencode({"response_type": "code", "client_id": APP["client_id"],
                                        "redirect_uri": CALLBACK, "scope": "openid offline_access",
                                        "state": "s", "code_challenge": challenge,
                                        "code_challenge_method": "S256"})
        try:
            opener.open(BASE + "/authorize?" + query, timeout=TIMEOUT)
            raise SystemExit("authorize did not redirect")
        except urllib.error.HTTPError as e:
            location = e.headers["Location"]
        code = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["code"][0]
        status, _, body = request("POST", "/token", {"grant_type": "authorization_code", "code": code,
                                                      "redirect_uri": CALLBACK, "code_verifier": verifier},
                                  basic(APP))
        if status != 200:
            raise SystemExit(f"code exchange answered {status}: {body}")
        tokens = json.loads(body)
        families.append({"access": tokens["access_token"], "refresh": tokens["refresh_token"]})
    return families


def request(method, path, form=None, auth=None):
    """One request on a connection of its own (so a keep-alive connection
    the server closed is never counted as a failure): (status,
    retry_after, body)."""
    conn = http.client.HTTPConnection(HOST, PORT, timeout=TIMEOUT)
    headers = {}
    body = None
    if form is not None:
        body = urllib.parse.urlencode(form)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    if auth:
        headers["Authorization"] = auth
    try:
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read().decode(errors="replace")
        return r.status, r.getheader("Retry-After"), data
    finally:
        conn.close()


def robot_token():
    status, _, body = request("POST", "/token", {"grant_type": "client_credentials",
                                                 "scope": "latchkey:admin"}, basic(ROBOT))
    if status != 200:
        raise SystemExit(f"client_credentials answered {status}: {body}")
    return json.loads(body)["access_token"]


def worker(i, family, admin_token, stop, events, lock):
    n = i
    while not stop.is_set():
        name = ENDPOINTS[n % len(ENDPOINTS)]
        n += 1
        if name == "jwks":
            call = ("GET", "/jwks", None, None)
        elif name == "cc_token":
            call = ("POST", "/token", {"grant_type": "client_credentials", "scope": "latchkey:admin"}, basic(ROBOT))
        elif name == "introspect":
            call = ("POST", "/introspect", {"token": admin_token}, basic(ROBOT))
        elif name == "userinfo":
            call = ("GET", "/userinfo", None, "Bearer " + family["access"])
        elif name == "refresh":
            call = ("POST", "/token", {"grant_type": "refresh_token", "refresh_token": family["refresh"]}, basic(APP))
        else:
            call = ("GET", "/admin/api/v1/users?limit=1", None, "Bearer " + admin_token)
        started = time.time()
        try:
            status, retry_after, body = request(*call)
            outcome = str(status)
            if name == "refresh" and status == 200:
                tokens = json.loads(body)
                family["refresh"], family["access"] = tokens["refresh_token"], tokens["access_token"]
            if name == "introspect" and status == 200 and not json.loads(body).get("active"):
                outcome = "inactive"  # a live token reported inactive: a wrong answer
        except TimeoutError:
            outcome, retry_after, body = "timeout", None, ""
        except (ConnectionError, http.client.HTTPException, OSError) as e:
            outcome, retry_after, body = "conn-error", None, type(e).__name__
        with lock:
            events.append((started, time.time() - started, name, outcome, retry_after is not None,
                           body[:200] if not outcome.startswith("2") else ""))
        if outcome != "200":
            time.sleep(0.05)


def run():
    admin_token = robot_token()
    families = sign_in_families(int(os.environ["LOAD_WORKERS"]))
    stop, lock, events = threading.Event(), threading.Lock(), []
    threads = [threading.Thread(target=worker, args=(i, f, admin_token, stop, events, lock))
               for i, f in enumerate(families)]
    for t in threads:
        t.start()
    open("load.started", "w").close()
    while not os.path.exists("load.stop"):
        time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join()
    with open("events.json", "w") as f:
        json.dump(events, f)


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))] if values else 0.0


def report():
    events = json.load(open("events.json"))
    marks = dict(line.split() for line in open("phases.txt"))
    down, up = float(marks["stop_begin"]), float(marks["pg_ready"])
    limit = float(os.environ["LOAD_RECOVERY_LIMIT"])
    phase_of = lambda t: "before" if t < down else ("during" if t < up else "after")
    problems = []
    rows = {}
    for started, took, name, outcome, has_ra, body in events:
        phase = phase_of(started)
        r = rows.setdefault((phase, name), {"n": 0, "2xx": 0, "503": 0, "503-no-RA": 0, "5xx": 0,
                                            "other": 0, "hang": 0, "conn": 0, "lat": []})
        r["n"] += 1
        r["lat"].append(took)
        if outcome.startswith("2"):
            r["2xx"] += 1
        elif outcome == "503":
            r["503" if has_ra else "503-no-RA"] += 1
        elif outcome.startswith("5"):
            r["5xx"] += 1
        elif outcome == "timeout":
            r["hang"] += 1
        elif outcome == "conn-error":
            r["conn"] += 1
        else:
            r["other"] += 1
        if not outcome.startswith("2") and not (outcome == "503" and has_ra):
            problems.append(f"{phase} {name}: {outcome} after {took:.2f}s {body}")
    first = min(e[0] for e in events)
    steps = f"stop {float(marks['stopped']) - down:.1f}s, down {float(marks['start_begin']) - float(marks['stopped']):.1f}s, " \
        f"start {up - float(marks['start_begin']):.1f}s" if "stopped" in marks else "one restart"
    failed = [e[0] + e[1] for e in events if not e[3].startswith("2")]
    seen = (f"answers other than 2xx from +{min(failed) - down:.1f}s to +{max(failed) - down:.1f}s after the stop began"
            if failed else "no answer other than 2xx")
    print(f"\n{len(events)} requests from {os.environ['LOAD_WORKERS']} workers. PostgreSQL stopping at +{down - first:.1f}s, "
          f"accepting connections again {up - down:.1f}s later ({steps}); {seen}.\n")
    head = ["phase", "endpoint", "requests", "2xx", "503+RA", "503-RA", "5xx", "other", "hang", "conn",
            "p50 ms", "max ms"]
    print("{:<7} {:<11} {:>8} {:>6} {:>7} {:>6} {:>4} {:>5} {:>4} {:>4} {:>7} {:>7}".format(*head))
    for phase in ["before", "during", "after"]:
        for name in ENDPOINTS:
            r = rows.get((phase, name))
            if not r:
                continue
            print("{:<7} {:<11} {:>8} {:>6} {:>7} {:>6} {:>4} {:>5} {:>4} {:>4} {:>7.0f} {:>7.0f}".format(
                phase, name, r["n"], r["2xx"], r["503"], r["503-no-RA"], r["5xx"], r["other"], r["hang"],
                r["conn"], pct(r["lat"], 0.5) * 1000, max(r["lat"]) * 1000))
    # Recovery: from PostgreSQL accepting connections to the first request
    # of each path's final unbroken run of successes.
    print()
    end = max(e[0] for e in events)
    for name in DB_PATHS:
        mine = sorted((e for e in events if e[2] == name), key=lambda e: e[0])
        failures = [e[0] for e in mine if not e[3].startswith("2")]
        successes_after = [e[0] for e in mine if e[3].startswith("2") and (not failures or e[0] > failures[-1])]
        if not successes_after or end - successes_after[0] < 2:
            problems.append(f"{name}: no steady success after PostgreSQL came back")
            print(f"recovery {name:<11} never")
            continue
        recovered = max(0.0, successes_after[0] - up)
        print(f"recovery {name:<11} {recovered:5.1f}s after PostgreSQL was back")
        if recovered > limit:
            problems.append(f"{name}: recovered only after {recovered:.1f}s (limit {limit:.0f}s)")
    if problems:
        print(f"\nFAILED: {len(problems)} unexpected outcome(s); the first ones:")
        for p in problems[:20]:
            print("  " + p)
        sys.exit(1)
    print("\nOK: only 2xx and 503 with Retry-After; every path recovered without a restart.")


if __name__ == "__main__":
    run() if sys.argv[1] == "run" else report()
PY

export LOAD_BASE="$base" LOAD_TIMEOUT="$REQUEST_TIMEOUT" LOAD_WORKERS="$WORKERS"
export LOAD_ADMIN_PASSWORD="$admin_password" LOAD_RECOVERY_LIMIT="$RECOVERY_LIMIT"
now() { date +%s.%N; }

echo "== load: $WORKERS workers; before ${BEFORE_SECS}s, PostgreSQL down ${DOWN_SECS}s ($RESTART_MODE), after ${AFTER_SECS}s"
python3 load.py run &
load_pid=$!
for _ in $(seq 1 300); do [ -f load.started ] && break; kill -0 "$load_pid" 2>/dev/null || break; sleep 0.1; done
[ -f load.started ] || { wait "$load_pid"; echo "load setup failed" >&2; exit 1; }

sleep "$BEFORE_SECS"
echo "stop_begin $(now)" >phases.txt
if [ "$RESTART_MODE" = "restart" ]; then
    pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$PG_CLUSTER" restart
else
    pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$PG_CLUSTER" stop
    echo "stopped $(now)" >>phases.txt
    sleep "$DOWN_SECS"
    echo "start_begin $(now)" >>phases.txt
    pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$PG_CLUSTER" start
fi
until pg_running; do sleep 0.1; done
echo "pg_ready $(now)" >>phases.txt
echo "== PostgreSQL is back"
sleep "$AFTER_SECS"
touch load.stop
wait "$load_pid"
kill -0 "$server_pid" 2>/dev/null || { echo "latchkey serve died during the run" >&2; exit 1; }

python3 load.py report
