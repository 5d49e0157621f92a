"""The report of bench/time_to_loss.py: target, time and tokens to it, speed-ups, and the same at side-by-side rates.

Tokens to target come from a run's validation curve and do not depend on the machine; seconds do. When the
runs of one benchmark were made in several sittings on different machines (a cloud VM of the same CPU name
can be 1.5x faster than the one before), or several at once (--jobs), their clocks do not compare. The
side-by-side table then answers the question: each system's tokens to target divided by its training
tokens/s, measured for all systems next to each other in one sitting (`--throughput STEPS`).
"""

from __future__ import annotations

import statistics
from itertools import pairwise


def crossing(points: list[dict], target: float) -> dict | None:
    """Time, tokens and step at which the curve first reaches ``target``: linear between evaluations."""
    if points[0]["loss"] <= target:
        return dict(points[0])
    for prev, cur in pairwise(points):
        if cur["loss"] <= target:
            f = (prev["loss"] - target) / (prev["loss"] - cur["loss"])
            return {k: prev[k] + f * (cur[k] - prev[k]) for k in ("wall", "cpu", "tokens", "step")}
    return None


def mean_sd(values: list[float]) -> dict:
    if not values:
        return {"mean": None, "sd": None, "n": 0}
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.mean(values), "sd": sd, "n": len(values)}


def pm(s: dict, digits: int = 1, scale: float = 1.0) -> str:
    if s["mean"] is None:
        return "not reached"
    return f"{s['mean'] / scale:,.{digits}f} ± {s['sd'] / scale:,.{digits}f}"


def rate(run: dict) -> dict:
    """Training tokens/s and CPU-s a token over a throughput run's second half (past the first steps)."""
    mid, last = run["points"][-2], run["points"][-1]
    tokens = last["tokens"] - mid["tokens"]
    return {
        "tokens_per_sec": tokens / (last["wall"] - mid["wall"]),
        "cpu_per_token": (last["cpu"] - mid["cpu"]) / tokens,
        "load": run.get("load"),
    }


def rates(throughput: dict) -> dict[str, dict]:
    """Each system's median rate over the repeats of a throughput sitting."""
    return {
        system: {k: statistics.median(r[k] for r in reps) for k in ("tokens_per_sec", "cpu_per_token")}
        | {"range": [min(r["tokens_per_sec"] for r in reps), max(r["tokens_per_sec"] for r in reps)]}
        for system, reps in throughput["runs"].items()
    }


def clock_warnings(runs: dict) -> list[str]:
    """Why the runs' own clocks may not compare: several machines, or runs made side by side (--jobs)."""
    machines = [r.get("machine") or {} for per_seed in runs.values() for r in per_seed.values()]
    ids = {m.get("cpu_id") for m in machines}
    out = []
    if len(ids) > 1:
        named = ", ".join(sorted(str(i) if i else "not recorded" for i in ids))
        out.append(f"the runs were made on {len(ids)} machines ({named}): their clocks do not compare")
    if any(m.get("jobs", 1) > 1 for m in machines):
        out.append("some runs shared the CPU with another run (--jobs > 1): their clocks are not their speed")
    return out


def side_by_side(table: dict, throughput: dict, budget_tokens: float) -> dict:
    """Time to target at the rates of one throughput sitting: tokens to target / tokens per second."""
    r = rates(throughput)
    ref_wall = budget_tokens / r["nanogpt"]["tokens_per_sec"]
    ref_cpu = budget_tokens * r["nanogpt"]["cpu_per_token"]
    out = {"nanogpt_budget_wall": ref_wall, "nanogpt_budget_cpu": ref_cpu, "machine": throughput["machine"]}
    for system, row in table.items():
        tokens = [h["tokens"] for h in row["per_seed"].values() if h is not None]
        wall = mean_sd([t / r[system]["tokens_per_sec"] for t in tokens])
        cpu = mean_sd([t * r[system]["cpu_per_token"] for t in tokens])
        out[system] = {
            **r[system],
            "wall_to_target": wall,
            "cpu_to_target": cpu,
            "speedup_wall": ref_wall / wall["mean"] if wall["mean"] else None,
            "speedup_cpu": ref_cpu / cpu["mean"] if cpu["mean"] else None,
        }
    return out


def report(systems: list[str], runs: dict, facts: dict, config: dict, throughput: dict | None = None) -> dict:
    """The target, each system's time and tokens to it, the table(s), and the result JSON."""
    seeds = sorted(runs["nanogpt"])
    finals = [runs["nanogpt"][s]["points"][-1] for s in seeds]
    target = statistics.mean(p["loss"] for p in finals)
    ref_wall = statistics.mean(p["wall"] for p in finals)
    ref_cpu = statistics.mean(p["cpu"] for p in finals)
    table = {}
    for system in systems:
        hits = {s: crossing(r["points"], target) for s, r in runs[system].items()}
        reached = [h for h in hits.values() if h is not None]
        last = [r["points"][-1] for r in runs[system].values()]
        row = {
            "params": next(iter(runs[system].values()))["params"],
            "reached": f"{len(reached)}/{len(hits)}",
            "per_seed": hits,
            **{f"{k}_to_target": mean_sd([h[k] for h in reached]) for k in ("wall", "cpu", "tokens", "step")},
            "final_loss": mean_sd([p["loss"] for p in last]),
            "best_loss": mean_sd([min(p["loss"] for p in r["points"]) for r in runs[system].values()]),
            "train_wall": mean_sd([p["wall"] for p in last]),
            "tokens_per_sec": mean_sd([p["tokens"] / p["wall"] for p in last]),
        }
        mean_wall, mean_cpu = row["wall_to_target"]["mean"], row["cpu_to_target"]["mean"]
        row["speedup_wall"] = ref_wall / mean_wall if mean_wall else None
        row["speedup_cpu"] = ref_cpu / mean_cpu if mean_cpu else None
        table[system] = row
    print(
        f"\ntarget: nanoGPT's final validation loss after {config['budget']:,} steps, mean of {len(seeds)} "
        f"seeds: {target:.4f} nats/token; nanoGPT's training time for its budget {ref_wall:.1f} s "
        f"({ref_cpu:.1f} CPU-s)\n\nBy each run's own clock:\n\n| system | parameters (non-embedding) | time to "
        "target, s | tokens to target | step at target | reached | final loss | best loss | tokens/s | speed-up "
        "(wall / CPU) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    for system, row in table.items():
        speed = f"{row['speedup_wall']:.2f} / {row['speedup_cpu']:.2f}" if row["speedup_wall"] else "-"
        speed = "reference" if system == "nanogpt" else speed
        print(
            f"| {system} | {row['params']['total']:,} ({row['params']['non_embedding']:,}) | "
            f"{pm(row['wall_to_target'])} | {pm(row['tokens_to_target'], 0)} | {pm(row['step_to_target'], 0)} | "
            f"{row['reached']} | {pm(row['final_loss'], 4)} | {pm(row['best_loss'], 4)} | "
            f"{pm(row['tokens_per_sec'], 0)} | {speed} |"
        )
    print("\nspeed-up: nanoGPT's training time for its whole budget / the system's time to target; goal >= 2")
    for warning in clock_warnings(runs):
        print(f"note: {warning}; read the side-by-side table (--throughput)")
    result = {"machine": facts, "config": config, "target": target, "nanogpt_budget_wall": ref_wall,
              "nanogpt_budget_cpu": ref_cpu, "systems": table}  # fmt: skip
    if throughput:
        budget_tokens = statistics.mean(p["tokens"] for p in finals)
        result["side_by_side"] = at = side_by_side(table, throughput, budget_tokens)
        print(
            f"\nAt the training rates measured side by side ({throughput['machine']['date']}, "
            f"{throughput['config']['steps']} steps x {throughput['config']['repeats']} in rotating order; "
            f"nanoGPT's budget {at['nanogpt_budget_wall']:.1f} s):\n\n| system | tokens/s (range) | time to "
            "target, s | speed-up (wall / CPU) |\n|---|---:|---:|---:|"
        )
        for system in table:
            row = at[system]
            speed = f"{row['speedup_wall']:.2f} / {row['speedup_cpu']:.2f}" if row["speedup_wall"] else "-"
            lo, hi = row["range"]
            print(
                f"| {system} | {row['tokens_per_sec']:,.0f} ({lo:,.0f}-{hi:,.0f}) | {pm(row['wall_to_target'])} "
                f"| {'reference' if system == 'nanogpt' else speed} |"
            )
    for seed, run in runs["nanogpt"].items():
        best, final = min(p["loss"] for p in run["points"]), run["points"][-1]["loss"]
        if best < final - 0.01:  # its final loss was passed earlier: the reference time is longer than needed
            print(
                f"note: nanoGPT seed {seed} reached {best:.4f} before ending at {final:.4f}: it overfits at this "
                "budget, which flatters every speed-up; a smaller --budget is fairer"
            )
    for system, row in table.items():
        if (
            row["final_loss"]["mean"] is not None
            and row["final_loss"]["mean"] > row["best_loss"]["mean"] + 0.05
        ):
            print(
                f"note: {system} ends {row['final_loss']['mean'] - row['best_loss']['mean']:.3f} nats above its "
                "best evaluation (mean over seeds): it overfits this corpus before its schedule ends"
            )
    return result | {"runs": runs}
