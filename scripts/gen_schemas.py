"""Write vmainspect/schemas/*.json from the model's Structs (see vmainspect/schemas/generate.py).

python3 scripts/gen_schemas.py          # rewrite the shipped files
python3 scripts/gen_schemas.py --check  # exit 1 if a shipped file differs
"""

from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from vmainspect.schemas import generate  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only compare; exit 1 if a file differs")
    args = ap.parse_args()
    differ = 0
    for doc in generate.documents():
        path = os.path.join(ROOT, "vmainspect", "schemas", doc.file)
        new = generate.text(generate.generate(doc))
        try:
            with open(path, encoding="utf-8") as f:
                old = f.read()
        except FileNotFoundError:
            old = None
        if old == new:
            continue
        differ += 1
        if args.check:
            print(f"{path}: differs from what the classes generate", file=sys.stderr)
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(new)
            print(f"wrote {path}")
    return 1 if args.check and differ else 0


if __name__ == "__main__":
    sys.exit(main())
