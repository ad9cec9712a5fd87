#!/usr/bin/env python3
"""turkform against what requesters use today, side by side, in one run.

Starts simulators on 127.0.0.1 (`turkform sim serve`, release build), runs every contender
against identical simulator settings the same number of times, writes the raw figures to
bench/results.json and prints the table that bench/table.py puts in the README. Run it with
`./scripts/bench` (which builds the release binaries first and then regenerates the README
table from the JSON).

Scenarios:
  post_batch:     N HITs at --latency 30 --throttle-rps R --burst B; floor (N - B) / R
  lost_responses: the same with --drop-rate 0.02: duplicates and HITs lost track of
  cron_rerun:     a re-run over HITs already in place (no latency): wall time, calls
  plan_scaling:   no-op `plan --refresh=false` at 1k / 10k / 100k items: wall, peak RSS
  sim_throughput: successful CreateHITWithHITType requests/s (turkform-sim example)
  results_sync:   refresh recording 2,000 HITs x 3 answers at the same rate (turkform-apply example)
  results_export: `turkform results` over 1,000,000 assignments of a generated state
  results_aggregate: `results --aggregate` majority and dawid-skene over 100,000 answers
  review:         approve 6,000 assignments, then pay 2,000 bonuses, at the batch rate (turkform-apply example)
  report:         `turkform report` over a generated state of 100,000 items (300,000 answers)

Adding a scenario: a cargo example that prints one JSON object of figures as its last stdout
line is one call, e.g.

    @scenario("my_figures")
    def my_figures(ctx):
        return example("turkform-apply", "apply_bench", "--items", "1000")
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# TURKFORM_BIN points the harness at another build (a debug one, to try the harness quickly).
TURKFORM = os.environ.get("TURKFORM_BIN") or os.path.join(ROOT, "target", "release", "turkform")
BENCH = os.path.join(ROOT, "bench")
sys.path.insert(0, BENCH)
from common import client_kwargs  # noqa: E402

TEMPLATE = "<crowd-form><p>{{ item.text }}</p><crowd-input name=\"answer\"></crowd-input></crowd-form>\n"

# The posting contenders, in table order: the script run, and how the table names it.
POSTERS = {
    "turkform": "turkform apply",
    "boto3_fair": "boto3, 16 threads, adaptive retries, a token per item",
    "boto3_threaded": "boto3, 16 threads, adaptive retries, no token",
    "boto3_sequential": "boto3, sequential (docs / amti idiom)",
}


def mutating_operations():
    """turkform_sim::mutating_operations(), read from its one definition: the entries of the
    OPERATIONS table in crates/turkform-sim/src/ops/mod.rs made with Operation::write."""
    import re
    path = os.path.join(ROOT, "crates", "turkform-sim", "src", "ops", "mod.rs")
    text = open(path, encoding="utf-8").read()
    names = re.findall(r'Operation::write\(\s*"([A-Za-z]+)"', text)
    if not names:
        raise SystemExit(f"cannot find the mutating operations in {path}")
    return names


MUTATING = mutating_operations()


class Sim:
    """`turkform sim serve` on a random loopback port, with the flags it was given kept."""

    def __init__(self, workdir, *flags):
        self.flags = list(flags)
        self.db = os.path.join(workdir, f"sim-{time.monotonic_ns()}.db")
        self.proc = subprocess.Popen(
            [TURKFORM, "sim", "serve", "--addr", "127.0.0.1:0", "--db", self.db, *flags],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http://127.0.0.1:"):
            raise SystemExit(f"simulator did not start: {self.url!r}")

    def stats(self):
        import urllib.request
        with urllib.request.urlopen(self.url + "/_sim/stats", timeout=30) as r:
            return json.load(r)

    def calls(self):
        return sum(self.stats()["requests"].values())

    def mutating(self):
        req = self.stats()["requests"]
        return sum(req.get(op, 0) for op in MUTATING)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def flag(flags, name):
    """The value given to `name` in a simulator flag list, or None."""
    for i, f in enumerate(flags):
        if f == name and i + 1 < len(flags):
            return float(flags[i + 1])
        if f.startswith(name + "="):
            return float(f.split("=", 1)[1])
    return None


def floor_seconds(items, flags):
    """The fastest any client can post `items` creates through the simulator's token bucket:
    it starts full (burst B) and refills at R per second, so (N - B) / R. R and B are read from
    the flags passed to the simulator; B defaults to max(1, R) as the simulator's does."""
    rate = flag(flags, "--throttle-rps")
    if rate is None:
        return None, None, None
    burst = flag(flags, "--burst")
    if burst is None:
        burst = max(1.0, rate)
    return max(0.0, (items - burst) / rate), rate, burst


def make_project(workdir, items, reward="0.10", assignments=3):
    proj = tempfile.mkdtemp(dir=workdir, prefix="proj-")
    os.makedirs(os.path.join(proj, "campaigns", "data"))
    os.makedirs(os.path.join(proj, "campaigns", "templates"))
    with open(os.path.join(proj, "turkform.toml"), "w") as f:
        f.write('target = "sim"\n\n[apply]\nconcurrency = 16\n')
    with open(os.path.join(proj, "campaigns", "templates", "batch.html"), "w") as f:
        f.write(TEMPLATE)
    with open(os.path.join(proj, "campaigns", "data", "batch.csv"), "w") as f:
        f.write("id,text\n")
        for i in range(items):
            f.write(f"item-{i:06d},Sentence number {i} to label\n")
    with open(os.path.join(proj, "campaigns", "batch.toml"), "w") as f:
        f.write("""[hit_type]
title = "Label a sentence"
description = "Read one sentence and label it."
keywords = ["text", "labeling"]
reward = "{reward}"
assignment_duration = "10m"
auto_approval_delay = "3d"

[layout]
html = "templates/batch.html"

[items]
source = "data/batch.csv"
key = "id"
assignments = {assignments}
lifetime = "7d"
""".replace("{reward}", reward).replace("{assignments}", str(assignments)))
    return proj


def run_measured(cmd, **kw):
    """Runs cmd with its stdout discarded; returns (wall s, exit code, peak RSS MB, CPU s)."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)
    # Read stderr while the child runs, so a chatty child cannot block on a full pipe.
    err = proc.stderr.read().decode(errors="replace")
    _, status, rusage = os.wait4(proc.pid, 0)
    elapsed = time.monotonic() - start
    proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.stderr.write(f"warning: {' '.join(cmd[:3])}... exited {proc.returncode}: {err[-400:]}\n")
    cpu = rusage.ru_utime + rusage.ru_stime
    return elapsed, proc.returncode, rusage.ru_maxrss / 1024.0, cpu


def turkform(proj, url, *args):
    return [TURKFORM, "-C", proj, "--endpoint-url", url, *args]


def list_all_hits(sim_url):
    """Every HIT from the simulator's own listing (ListHITs pages)."""
    import boto3
    client = boto3.client("mturk", **client_kwargs(sim_url))
    hits, token = [], None
    while True:
        kw = {"MaxResults": 100}
        if token:
            kw["NextToken"] = token
        page = client.list_hits(**kw)
        hits.extend(page["HITs"])
        token = page.get("NextToken")
        if not token or not page["HITs"]:
            break
    return hits


def post_batch(workdir, contender, items, flags):
    """One posting run; returns a dict of figures."""
    sim = Sim(workdir, *flags)
    try:
        proj = make_project(workdir, items)
        csv_path = os.path.join(proj, "campaigns", "data", "batch.csv")
        tmpl = os.path.join(proj, "campaigns", "templates", "batch.html")
        out = os.path.join(proj, "out.json")
        if contender == "turkform":
            cmd = turkform(proj, sim.url, "apply", "--auto-approve")
        else:
            cmd = [sys.executable, os.path.join(BENCH, f"{contender}.py"), sim.url, csv_path, tmpl, out]
        secs, code, _, cpu = run_measured(cmd)
        stats = sim.stats()
        hits = list_all_hits(sim.url)
        annotations = {h.get("RequesterAnnotation", "") for h in hits}
        if contender == "turkform":
            listed = subprocess.run(turkform(proj, sim.url, "state", "list"), capture_output=True, text=True)
            tracked = {line.split("\t")[2] for line in listed.stdout.splitlines() if line.count("\t") >= 2}
        else:
            try:
                tracked = set(json.load(open(out))["hits"].values())
            except (OSError, ValueError):
                tracked = set()
        calls = sum(stats["requests"].values())
        return {
            "wall_s": secs,
            "cpu_s": cpu,
            "exit": code,
            "hits": len(hits),
            "duplicates": len(hits) - len(annotations),
            "lost": sum(1 for h in hits if h["HITId"] not in tracked),
            "missing": items - len(annotations),
            "calls": calls,
            "calls_per_hit": calls / max(1, len(annotations)),
            "create_calls": stats["requests"].get("CreateHITWithHITType", 0),
            "throttled": stats.get("throttled", 0),
            "faults": stats.get("faults", 0),
            "dropped": stats.get("dropped", 0),
        }
    finally:
        sim.stop()


def medians(runs):
    """The median of every numeric figure over the runs."""
    keys = [k for k, v in runs[0].items() if isinstance(v, (int, float))]
    return {k: statistics.median(r[k] for r in runs) for k in keys}


def example(package, name, *args):
    """Runs a cargo example in release mode; its last stdout line must be one JSON object."""
    cmd = ["cargo", "run", "--quiet", "--release", "--locked", "-p", package, "--example", name]
    if args:
        cmd += ["--", *args]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    command = " ".join(cmd[:2] + cmd[4:])
    if proc.returncode != 0 or not lines:
        return {"command": command, "error": (proc.stdout + proc.stderr).strip()[-400:]}
    try:
        figures = json.loads(lines[-1])
    except ValueError as e:
        return {"command": command, "error": f"the last line is not JSON ({e}): {lines[-1][:200]}"}
    return {"command": command, "figures": figures}


SCENARIOS = []


def scenario(name):
    def register(f):
        SCENARIOS.append((name, f))
        return f
    return register


@scenario("post_batch")
def scenario_post_batch(ctx):
    flags = ["--latency", "30", "--throttle-rps", "200", "--burst", "200"]
    floor, rate, burst = floor_seconds(ctx.batch, flags)
    contenders = {}
    for contender, label in POSTERS.items():
        runs = [post_batch(ctx.workdir, contender, ctx.batch, flags) for _ in range(ctx.runs)]
        contenders[contender] = {"label": label, "runs": runs, "median": medians(runs)}
    return {"items": ctx.batch, "flags": flags, "rate_rps": rate, "burst": burst,
            "floor_s": floor, "contenders": contenders}


@scenario("lost_responses")
def scenario_lost_responses(ctx):
    flags = ["--latency", "30", "--throttle-rps", "200", "--burst", "200", "--drop-rate", "0.02", "--seed", "42"]
    contenders = {}
    for contender, label in POSTERS.items():
        runs = [post_batch(ctx.workdir, contender, ctx.batch, flags) for _ in range(ctx.runs)]
        contenders[contender] = {"label": label, "runs": runs, "median": medians(runs)}
    return {"items": ctx.batch, "flags": flags, "contenders": contenders}


@scenario("cron_rerun")
def scenario_cron_rerun(ctx):
    """Each contender re-runs over the batch it posted itself."""
    out = {"items": ctx.cron, "contenders": {}}
    for contender in ["turkform", "boto3_cron"]:
        runs = []
        for _ in range(ctx.runs):
            sim = Sim(ctx.workdir)
            try:
                proj = make_project(ctx.workdir, ctx.cron)
                csv_path = os.path.join(proj, "campaigns", "data", "batch.csv")
                if contender == "turkform":
                    setup = turkform(proj, sim.url, "apply", "--auto-approve")
                    rerun = turkform(proj, sim.url, "apply", "--auto-approve")
                else:
                    tmpl = os.path.join(proj, "campaigns", "templates", "batch.html")
                    setup = [sys.executable, os.path.join(BENCH, "boto3_fair.py"), sim.url, csv_path, tmpl,
                             os.path.join(proj, "out.json")]
                    rerun = [sys.executable, os.path.join(BENCH, "boto3_cron.py"), sim.url, csv_path]
                _, code, _, _ = run_measured(setup)
                if code != 0:
                    raise SystemExit(f"cron setup for {contender} failed (exit {code})")
                before_calls, before_mut = sim.calls(), sim.mutating()
                secs, code, _, cpu = run_measured(rerun)
                runs.append({"wall_s": secs, "cpu_s": cpu, "exit": code,
                             "calls": sim.calls() - before_calls, "mutating": sim.mutating() - before_mut})
            finally:
                sim.stop()
        label = "turkform apply" if contender == "turkform" else "boto3, ListHITs pages matched to items"
        out["contenders"][contender] = {"label": label, "runs": runs, "median": medians(runs)}
    return out


@scenario("plan_scaling")
def scenario_plan_scaling(ctx):
    sizes = {}
    for n in ctx.plan_sizes:
        sim = Sim(ctx.workdir)
        try:
            # $0.01 x 1 assignment keeps 100k HITs within the simulated $10,000 balance.
            proj = make_project(ctx.workdir, n, reward="0.01", assignments=1)
            setup, code, _, _ = run_measured(turkform(proj, sim.url, "apply", "--auto-approve", "--refresh=false"))
            if code != 0:
                raise SystemExit(f"setting up {n} HITs failed (exit {code})")
            # The figure only counts if the plan really is a no-op: exit 0 with --detailed-exitcode.
            check = subprocess.run(turkform(proj, sim.url, "plan", "--refresh=false", "--detailed-exitcode"),
                                   capture_output=True)
            if check.returncode != 0:
                raise SystemExit(f"the {n}-item plan is not a no-op (exit {check.returncode})")
            runs = []
            for _ in range(ctx.runs):
                wall, code, rss, cpu = run_measured(turkform(proj, sim.url, "plan", "--refresh=false"))
                runs.append({"wall_s": wall, "cpu_s": cpu, "rss_mb": rss, "exit": code})
            sizes[str(n)] = {"setup_s": setup, "runs": runs, "median": medians(runs),
                             "peak_rss_mb": max(r["rss_mb"] for r in runs)}
        finally:
            sim.stop()
    return {"sizes": sizes}


@scenario("sim_throughput")
def scenario_sim_throughput(ctx):
    args = ("20000", "64") if ctx.quick else ()
    return example("turkform-sim", "throughput", *args)


@scenario("results_sync")
def scenario_results_sync(ctx):
    # Assignment sync in refresh: 2,000 HITs x 3 submitted answers at the batch scenario's rate.
    hits = "200" if ctx.quick else "2000"
    return example("turkform-apply", "results_sync_bench", "--hits", hits, "--assignments", "3",
                   "--latency", "30", "--throttle-rps", "200")


@scenario("results_export")
def scenario_results_export(ctx):
    # `turkform results` over a state generated for it (target: 1,000,000 rows < 10 s, < 300 MB).
    n = "20000" if ctx.quick else "1000000"
    return example("turkform", "results_export_bench", "--assignments", n)


@scenario("results_aggregate")
def scenario_results_aggregate(ctx):
    # `results --aggregate` majority and dawid-skene over 100,000 counted answers.
    n = "15000" if ctx.quick else "150000"
    return example("turkform", "results_export_bench", "--assignments", n, "--aggregate")


@scenario("review")
def scenario_review(ctx):
    # Approvals and bonuses through the journaled executor at the batch scenario's rate.
    approve, bonuses = ("600", "200") if ctx.quick else ("6000", "2000")
    return example("turkform-apply", "review_bench", "--approve", approve, "--bonuses", bonuses,
                   "--latency", "30", "--throttle-rps", "200")


@scenario("report")
def scenario_report(ctx):
    # `turkform report` over a generated state (target, issue 14: 100,000 items < 2 s, page < 5 MB).
    n = "10000" if ctx.quick else "100000"
    return example("turkform", "report_bench", "--items", n)


def targets(results, quick):
    """The issue's targets, evaluated on the results: (name, measured, pass)."""
    out = []
    pb = results.get("post_batch")
    if pb:
        tf = pb["contenders"]["turkform"]["median"]
        seq = pb["contenders"]["boto3_sequential"]["median"]
        floor = pb["floor_s"]
        ratio = tf["wall_s"] / floor if floor else float("inf")
        # Below 1.0 would mean the floor is wrong, not that turkform beat physics.
        out.append(("batch post: turkform wall <= 1.15x the floor (N - B) / R, and >= 1.0x",
                    f"{tf['wall_s']:.2f} s vs floor {floor:.2f} s ({ratio:.2f}x)", 1.0 <= ratio <= 1.15))
        out.append(("batch post: >= 5x faster than sequential boto3", f"{seq['wall_s'] / tf['wall_s']:.1f}x",
                    seq["wall_s"] / tf["wall_s"] >= 5))
        out.append(("batch post: API calls per HIT created <= 1.02", f"{tf['calls_per_hit']:.3f}",
                    tf["calls_per_hit"] <= 1.02))
    lr = results.get("lost_responses")
    if lr:
        tf = lr["contenders"]["turkform"]["median"]
        out.append(("lost responses: turkform 0 duplicates, 0 lost, 0 missing",
                    f"{tf['duplicates']:.0f}, {tf['lost']:.0f}, {tf['missing']:.0f}",
                    tf["duplicates"] == 0 and tf["lost"] == 0 and tf["missing"] == 0))
    cr = results.get("cron_rerun")
    if cr:
        tf = cr["contenders"]["turkform"]["median"]
        limit = cr["items"] // 100 + 10
        out.append((f"cron re-run: <= N/100 + 10 = {limit} calls, no mutating call",
                    f"{tf['calls']:.0f} calls, {tf['mutating']:.0f} mutating", tf["calls"] <= limit and tf["mutating"] == 0))
    ps = results.get("plan_scaling")
    if ps and not quick and "100000" in ps["sizes"]:
        big = ps["sizes"]["100000"]
        w = big["median"]["wall_s"]
        out.append(("plan: 100,000-item no-op < 3 s and < 400 MB", f"{w:.2f} s, {big['peak_rss_mb']:.0f} MB",
                    w < 3 and big["peak_rss_mb"] < 400))
        scale = w / max(ps["sizes"]["10000"]["median"]["wall_s"], 1e-9)
        out.append(("plan: 10k -> 100k scaling <= 12x", f"{scale:.1f}x", scale <= 12))
    rv = results.get("review", {}).get("figures")
    if rv:
        for phase, what, one, per in (("approve", "decisions", "decision", "calls_per_decision"),
                                      ("bonuses", "bonuses", "bonus", "calls_per_bonus")):
            f = rv[phase]
            ratio = f["wall_over_floor"]
            out.append((f"review: {f[what]:,} {what} wall <= 1.15x the floor (calls - B) / R",
                        f"{f['wall_s']:.2f} s vs floor {f['floor_s']:.2f} s ({ratio:.2f}x)",
                        f["floor_s"] > 0 and ratio <= 1.15))
            out.append((f"review: accepted calls per {one} <= 1.02", f"{f[per]:.3f}", f[per] <= 1.02))
    rp = results.get("report")
    if rp and not quick and "figures" in rp:
        f = rp["figures"]
        out.append((f"report: {f['items']:,} items < 2 s and a page < 5 MB",
                    f"{f['report_wall_s']:.2f} s, {f['page_bytes'] / 1e6:.2f} MB, {f['report_peak_rss_mb']:.0f} MB peak RSS",
                    f["report_wall_s"] < 2 and f["page_bytes"] < 5_000_000))
    return [{"name": n, "measured": m, "pass": bool(p)} for n, m, p in out]


class Ctx:
    pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="runs per contender, for medians (default 3)")
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--cron", type=int, default=10000)
    ap.add_argument("--quick", action="store_true", help="smaller sizes, one run: a smoke test")
    ap.add_argument("--only", action="append", default=[], help="run only this scenario (repeatable)")
    ap.add_argument("--out", help="where to write the raw results (default bench/results.json; "
                    "--quick writes bench/results-quick.json)")
    args = ap.parse_args()
    ctx = Ctx()
    ctx.quick = args.quick
    ctx.runs, ctx.batch, ctx.cron = args.runs, args.batch, args.cron
    ctx.plan_sizes = [1000, 10000, 100000]
    if args.quick:
        # 400 HITs: past the 200-request burst, so the floor is not zero.
        ctx.runs, ctx.batch, ctx.cron, ctx.plan_sizes = 1, 400, 1000, [1000]
    out_path = args.out or os.path.join(BENCH, "results-quick.json" if args.quick else "results.json")
    if not os.path.exists(TURKFORM):
        raise SystemExit(f"{TURKFORM} is missing: run ./scripts/bench, which builds it")
    known = {name for name, _ in SCENARIOS}
    for name in args.only:
        if name not in known:
            raise SystemExit(f"no scenario {name!r}: choose from {', '.join(sorted(known))}")
    ctx.workdir = tempfile.mkdtemp(prefix="turkform-bench-")
    results = {}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    selected = [name for name, _ in SCENARIOS if not args.only or name in args.only]

    def save(complete):
        # Written after every scenario, so an interrupted run keeps what it measured; "complete"
        # says whether every selected scenario ran (table.py refuses to publish otherwise).
        report = {
            "meta": {
                "date": time.strftime("%Y-%m-%d"),
                "cores": os.cpu_count(),
                "commit": commit,
                "runs": ctx.runs,
                "quick": ctx.quick,
                "complete": complete,
                "command": "./scripts/bench" + (" --quick" if ctx.quick else ""),
            },
            "scenarios": results,
            "targets": targets(results, ctx.quick),
        }
        with open(out_path, "w") as f:
            json.dump(report, f, indent=2, sort_keys=True)
            f.write("\n")
        return report

    try:
        for name, run in SCENARIOS:
            if name not in selected:
                continue
            sys.stderr.write(f"bench: {name}...\n")
            started = time.monotonic()
            results[name] = run(ctx)
            results[name]["scenario_s"] = time.monotonic() - started
            save(complete=False)
    finally:
        shutil.rmtree(ctx.workdir, ignore_errors=True)
    report = save(complete=len(results) == len(selected))
    sys.stderr.write(f"bench: raw results in {os.path.relpath(out_path, ROOT)}\n")
    import table
    print(table.render(report))
    failed = [t for t in report["targets"] if not t["pass"]]
    for t in failed:
        sys.stderr.write(f"bench: target missed: {t['name']}: {t['measured']}\n")


if __name__ == "__main__":
    main()
