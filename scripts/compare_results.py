"""Compare two evaluation results.json files number by number (refactoring checks).

    python scripts/compare_results.py A/results.json B/results.json

Prints how many numbers were compared, the largest absolute difference, the entries that differ by more than
1e-9 (or differ in kind), and whether both runs scored the same weights (the sha256 of every release file).
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": [1, 2]}}`` -> ``{"/a/b[0]": 1, "/a/b[1]": 2}``."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in flatten(item, f"{prefix}/{key}").items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in flatten(item, f"{prefix}[{i}]").items()}
    return {prefix: value}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a")
    parser.add_argument("b")
    args = parser.parse_args()
    with open(args.a) as handle_a, open(args.b) as handle_b:
        a, b = json.load(handle_a), json.load(handle_b)
    fa = flatten({k: v for k, v in a.items() if k != "config"})
    fb = flatten({k: v for k, v in b.items() if k != "config"})
    compared, worst, differing = 0, 0.0, []
    for key in sorted(set(fa) | set(fb)):
        x, y = fa.get(key), fb.get(key)
        if isinstance(x, float) and isinstance(y, float):
            if math.isnan(x) and math.isnan(y):
                continue
            compared += 1
            worst = max(worst, abs(x - y))
            if not abs(x - y) <= 1e-9:
                differing.append((key, x, y))
        elif x != y:
            differing.append((key, x, y))
    print(f"numbers compared: {compared}; largest difference: {worst:.3g}")
    for key, x, y in differing[:20]:
        print(f"differs: {key}: {x} vs {y}")
    print(f"entries differing by more than 1e-9 (or in kind): {len(differing)}")
    same = a.get("config", {}).get("weights_sha256") == b.get("config", {}).get("weights_sha256")
    print(f"same weights (sha256 of every release file): {same}")


if __name__ == "__main__":
    main()
