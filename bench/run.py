#!/usr/bin/env python3
"""turkform against what requesters use today, side by side, in one run.

Starts simulators on 127.0.0.1 (`turkform sim serve`, release build) and runs every contender
against identical simulator settings, then prints a table of medians and the targets as
PASS/FAIL. Run it with `./scripts/bench` (which builds the release binary first).

Scenarios (issue 6):
  1. post a batch:     2,000 HITs, --latency 30 --throttle-rps 200 (floor: 10 s)
  2. lost responses:   the same with --drop-rate 0.02: duplicates and HITs lost track of
  3. cron re-run:      a re-run over 10,000 HITs already in place (no latency): wall time, calls
  4. plan scaling:     no-op `plan --refresh=false` at 1k / 10k / 100k items: wall, peak RSS
  5. sim throughput:   CreateHITWithHITType requests/s with no latency (turkform-sim example)
  6. aggregation:      `results --aggregate` majority and dawid-skene over 100,000 answers read
                       from a state (turkform example results_export_bench)
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
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TURKFORM = os.path.join(ROOT, "target", "release", "turkform")
BENCH = os.path.join(ROOT, "bench")
MUTATING = [
    "CreateHIT", "CreateHITType", "CreateHITWithHITType", "CreateAdditionalAssignmentsForHIT",
    "UpdateExpirationForHIT", "UpdateHITTypeOfHIT", "CreateQualificationType",
    "UpdateQualificationType", "DeleteHIT",
]
TEMPLATE = "<crowd-form><p>{{ item.text }}</p><crowd-input name=\"answer\"></crowd-input></crowd-form>\n"


class Sim:
    """`turkform sim serve` on a random loopback port."""

    def __init__(self, workdir, *flags):
        self.db = os.path.join(workdir, f"sim-{time.monotonic_ns()}.db")
        self.proc = subprocess.Popen(
            [TURKFORM, "sim", "serve", "--addr", "127.0.0.1:0", "--db", self.db, *flags],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http://127.0.0.1:"):
            raise SystemExit(f"simulator did not start: {self.url!r}")

    def stats(self):
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


def run_timed(cmd, **kw):
    """Runs cmd; returns (seconds, exit code, peak RSS in MB of that process)."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)
    _, status, rusage = os.wait4(proc.pid, 0)
    elapsed = time.monotonic() - start
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.stderr.write(f"warning: {' '.join(cmd[:3])}... exited {code}: {err[-400:]}\n")
    return elapsed, code, rusage.ru_maxrss / 1024.0


def turkform(proj, url, *args):
    return [TURKFORM, "-C", proj, "--endpoint-url", url, *args]


def distinct_items(sim_url):
    """(hits, distinct annotations, hit ids) from the simulator's own listing."""
    import boto3
    client = boto3.client("mturk", endpoint_url=sim_url, region_name="us-east-1",
                          aws_access_key_id="AKIASIMULATOR", aws_secret_access_key="simulator-secret")
    hits, token = [], None
    while True:
        kw = {"MaxResults": 100}
        if token:
            kw["NextToken"] = token
        page = client.list_hits(**kw)
        hits.extend(page["HITs"])
        token = page.get("NextToken")
        if not token:
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
        secs, code, _ = run_timed(cmd)
        stats = sim.stats()
        hits = distinct_items(sim.url)
        annotations = [h.get("RequesterAnnotation", "") for h in hits]
        created = stats["requests"].get("CreateHITWithHITType", 0)
        if contender == "turkform":
            listed = subprocess.run(turkform(proj, sim.url, "state", "list"), capture_output=True, text=True)
            tracked = {line.split("\t")[2] for line in listed.stdout.splitlines() if line.count("\t") >= 2}
        else:
            try:
                tracked = set(json.load(open(out))["hits"].values())
            except (OSError, ValueError):
                tracked = set()
        return {
            "wall": secs,
            "exit": code,
            "hits": len(hits),
            "duplicates": len(hits) - len(set(annotations)),
            "lost": sum(1 for h in hits if h["HITId"] not in tracked),
            "missing": items - len(set(annotations)),
            "calls": sum(stats["requests"].values()),
            "calls_per_hit": sum(stats["requests"].values()) / max(1, len(set(annotations))),
            "create_calls": created,
            "throttled": stats.get("throttled", 0),
        }
    finally:
        sim.stop()


def median(runs, key):
    return statistics.median(r[key] for r in runs)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="runs per contender for medians (default 3)")
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--cron", type=int, default=10000)
    ap.add_argument("--quick", action="store_true", help="smaller sizes, one run: a smoke test")
    args = ap.parse_args()
    if args.quick:
        args.runs, args.batch, args.cron = 1, 200, 1000
    if not os.path.exists(TURKFORM):
        raise SystemExit(f"{TURKFORM} is missing: run ./scripts/bench, which builds it")
    workdir = tempfile.mkdtemp(prefix="turkform-bench-")
    results, targets = [], []
    floor = args.batch / 200.0
    try:
        # 1. post a batch
        flags = ["--latency", "30", "--throttle-rps", "200"]
        batch = {}
        for contender in ["turkform", "boto3_threaded", "boto3_sequential"]:
            runs = args.runs if contender != "boto3_sequential" else max(1, args.runs - 1)
            batch[contender] = [post_batch(workdir, contender, args.batch, flags) for _ in range(runs)]
            r = batch[contender]
            attempts = statistics.median((x["calls"] + x["throttled"]) / max(1, x["hits"]) for x in r)
            results.append(("post batch", contender, f"{median(r, 'wall'):.2f} s",
                            f"{median(r, 'calls_per_hit'):.3f} calls/HIT ({attempts:.3f} with throttled attempts)",
                            f"median of {len(r)}"))
        tf, seq = median(batch["turkform"], "wall"), median(batch["boto3_sequential"], "wall")
        targets.append(("batch post: turkform wall <= 1.15x floor", f"{tf:.2f} s vs floor {floor:.1f} s ({tf / floor:.2f}x)", tf <= 1.15 * floor))
        targets.append(("batch post: >= 5x faster than sequential boto3", f"{seq / tf:.1f}x", seq / tf >= 5))
        cph = median(batch["turkform"], "calls_per_hit")
        creates_per_hit = median(batch["turkform"], "create_calls") / args.batch
        targets.append(("batch post: API calls per HIT created <= 1.02", f"{cph:.3f} all calls/HIT ({creates_per_hit:.3f} creates/HIT)", cph <= 1.02))

        # 2. lost responses
        flags_drop = flags + ["--drop-rate", "0.02", "--seed", "42"]
        for contender in ["turkform", "boto3_threaded", "boto3_sequential"]:
            r = post_batch(workdir, contender, args.batch, flags_drop)
            results.append(("lost responses", contender, f"{r['duplicates']} duplicates",
                            f"{r['lost']} lost track of", f"{r['missing']} items without a HIT"))
            if contender == "turkform":
                targets.append(("lost responses: turkform 0 duplicates, 0 lost",
                                f"{r['duplicates']} duplicates, {r['lost']} lost, {r['missing']} missing",
                                r["duplicates"] == 0 and r["lost"] == 0 and r["missing"] == 0))

        # 3. cron re-run over N HITs already in place
        sim = Sim(workdir)
        try:
            proj = make_project(workdir, args.cron)
            run_timed(turkform(proj, sim.url, "apply", "--auto-approve"))
            before_calls, before_mut = sim.calls(), sim.mutating()
            secs, code, _ = run_timed(turkform(proj, sim.url, "apply", "--auto-approve"))
            calls, mut = sim.calls() - before_calls, sim.mutating() - before_mut
            results.append(("cron re-run", "turkform", f"{secs:.2f} s", f"{calls} calls", f"{mut} mutating"))
            limit = args.cron // 100 + 10
            targets.append((f"cron re-run: <= {limit} calls, no mutating call", f"{calls} calls, {mut} mutating", calls <= limit and mut == 0))
            records = os.path.join(proj, "records.json")
            hits = distinct_items(sim.url)
            json.dump({"hits": {h["RequesterAnnotation"]: h["HITId"] for h in hits}}, open(records, "w"))
            before_calls = sim.calls()
            secs_b, _, _ = run_timed([sys.executable, os.path.join(BENCH, "boto3_cron.py"), sim.url, records])
            results.append(("cron re-run", "boto3 GetHIT loop", f"{secs_b:.2f} s", f"{sim.calls() - before_calls} calls", ""))
        finally:
            sim.stop()

        # 4. plan scaling: no-op plans with state in place
        plan_figures = {}
        for n in [1000, 10000, 100000]:
            sim = Sim(workdir)
            try:
                # $0.01 x 1 assignment keeps 100k HITs within the simulated $10,000 balance.
                proj = make_project(workdir, n, reward="0.01", assignments=1)
                setup, code, _ = run_timed(turkform(proj, sim.url, "apply", "--auto-approve", "--refresh=false"))
                if code != 0:
                    raise SystemExit(f"setting up {n} HITs failed (exit {code})")
                # The figure only counts if the plan really is a no-op: exit 0 with --detailed-exitcode.
                check = subprocess.run(turkform(proj, sim.url, "plan", "--refresh=false", "--detailed-exitcode"),
                                       capture_output=True)
                if check.returncode != 0:
                    raise SystemExit(f"the {n}-item plan is not a no-op (exit {check.returncode})")
                runs = [run_timed(turkform(proj, sim.url, "plan", "--refresh=false")) for _ in range(args.runs)]
                wall = statistics.median(r[0] for r in runs)
                rss = max(r[2] for r in runs)
                plan_figures[n] = (wall, rss)
                results.append(("no-op plan", f"{n} items", f"{wall:.2f} s", f"{rss:.0f} MB peak RSS",
                                f"setup apply of {n} HITs: {setup:.1f} s"))
            finally:
                sim.stop()
        w100, r100 = plan_figures[100000]
        targets.append(("plan: 100k no-op < 3 s and < 400 MB", f"{w100:.2f} s, {r100:.0f} MB", w100 < 3 and r100 < 400))
        scale = w100 / max(plan_figures[10000][0], 1e-9)
        targets.append(("plan: 10k -> 100k scaling <= 12x", f"{scale:.1f}x", scale <= 12))

        # 5. simulator throughput
        out = subprocess.run(
            ["cargo", "run", "--quiet", "--release", "-p", "turkform-sim", "--example", "throughput"],
            cwd=ROOT, capture_output=True, text=True,
        )
        import re
        found = re.search(r"(\d+) requests/s", out.stdout)
        figure = f"{found.group(1)} requests/s" if found else "not measured: " + (out.stdout + out.stderr).strip()[-200:]
        results.append(("sim throughput", "CreateHITWithHITType, --db on disk", figure,
                        "64 signed keep-alive connections", "no latency"))

        # 6. aggregation over 100,000 counted answers (150,000 assignments, every third rejected)
        bench_bin = os.path.join(ROOT, "target", "release", "examples", "results_export_bench")
        out = subprocess.run([bench_bin, "--assignments", "150000", "--aggregate"],
                             cwd=ROOT, capture_output=True, text=True)
        try:
            agg = json.loads(out.stdout.strip().splitlines()[-1])
            for method in ("majority", "dawid_skene"):
                results.append(("results --aggregate", method.replace("_", "-"),
                                f"{agg[method + '_wall_s']:.2f} s",
                                f"{agg[method + '_peak_rss_mb']:.0f} MB peak RSS",
                                f"{agg['answers_counted']:,} answers, {agg['items']:,} items"))
        except (IndexError, KeyError, ValueError):
            results.append(("results --aggregate", "both", "not measured",
                            (out.stdout + out.stderr).strip()[-200:], ""))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"\nturkform benchmarks ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores)\n")
    print(f"| scenario | contender | figure | figure | note |\n|---|---|---|---|---|")
    for row in results:
        print("| " + " | ".join(row) + " |")
    print("\n| target | measured | result |\n|---|---|---|")
    for name, measured, ok in targets:
        print(f"| {name} | {measured} | {'PASS' if ok else 'FAIL'} |")


if __name__ == "__main__":
    main()
