"""Does the run-time policy, or the clock offset, reject real model-written tasks? Per row, side by side.

    python experiments/hardening/seed_verdicts.py SEED_DIR [--out experiments/hardening/seed_verdicts.jsonl]

Validates every row of the AZR authors' two seed files (Qwen2.5-Coder-7B's programs: 256 triplets
as deduction tasks, 256 induction rows) three ways in one executor: as `azr train` does (run-time
policy and clock offset), without the policy, and without either (the determinism check as it was:
hash seeds only). Writes one line per row with the three verdicts and prints the counts and every
row whose verdict differs.
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

from azr.executor import Executor, ExecutorConfig
from azr.tasks import TaskType
from azr.tasks.seeds import read_rows
from azr.tasks.validate import ValidationConfig, Validator

FILES = {"7b_coder_seed_io.jsonl": TaskType.DEDUCTION, "7b_coder_code_f_seed_io.jsonl": TaskType.INDUCTION}
WAYS = {
    "policy+offset": ValidationConfig(),
    "offset only": ValidationConfig(policy=False),
    "neither": ValidationConfig(policy=False, shift_clock=False),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("seed_dir", type=Path)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("seed_verdicts.jsonl"))
    args = parser.parse_args()
    lines = []
    with Executor(ExecutorConfig(timeout=5)) as executor:
        print(f"sandbox: {executor.describe()}")
        for name, task_type in FILES.items():
            rows = (args.seed_dir / name).read_text().splitlines()
            proposals = list(read_rows(rows, task_type))
            verdicts = {way: Validator(executor, config).validate(proposals) for way, config in WAYS.items()}
            for way, found in verdicts.items():
                counts = collections.Counter("valid" if v.valid else v.rejection.value for v in found)
                print(f"{name} ({task_type.value}), {way}: {dict(counts.most_common())}")
            for number, per_way in enumerate(zip(*verdicts.values(), strict=True), 1):
                reasons = {way: "valid" if v.valid else v.rejection.value for way, v in zip(WAYS, per_way, strict=True)}
                lines.append({"file": name, "line": number, **reasons})
                if len(set(reasons.values())) > 1:
                    print(f"  differs, line {number}: {reasons}")
    args.out.write_text("".join(json.dumps(line) + "\n" for line in lines))
    changed = sum(len({line[way] for way in WAYS}) > 1 for line in lines)
    print(f"{len(lines)} rows, {changed} with verdicts that differ between the three ways; per row: {args.out}")


if __name__ == "__main__":
    main()
