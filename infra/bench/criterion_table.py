#!/usr/bin/env python3
"""Prints criterion's latest results (target/criterion/*/*/new/estimates.json) as a markdown table.

Usage: python3 infra/bench/criterion_table.py [CRITERION_DIR] [GROUP ...]
CRITERION_DIR defaults to target/criterion of this workspace; with GROUPs, only those groups, in that order.
"""
import json
import pathlib
import sys

root = pathlib.Path(__file__).resolve().parents[2] / "target" / "criterion"
args = sys.argv[1:]
if args and pathlib.Path(args[0]).is_dir():
    root = pathlib.Path(args.pop(0))
groups = args or sorted(p.name for p in root.iterdir() if p.is_dir() and p.name != "report")


def us(ns):
    return f"{ns / 1000:.1f}" if ns >= 1000 else f"{ns / 1000:.2f}"


print("| benchmark | median (us) | mean (us) | mean 95% CI (us) |")
print("|---|---|---|---|")
for group in groups:
    for bench in sorted((root / group).iterdir()):
        est = bench / "new" / "estimates.json"
        if not est.is_file():
            continue
        e = json.loads(est.read_text())
        mean, median = e["mean"], e["median"]
        ci = mean["confidence_interval"]
        print(
            f"| {group}/{bench.name} | {us(median['point_estimate'])} | {us(mean['point_estimate'])} "
            f"| {us(ci['lower_bound'])} - {us(ci['upper_bound'])} |"
        )
