"""Write the bundled model as an fp16 safetensors directory (~45 MB) to carry to a GPU machine.

    PYTHONPATH=src python bench/make_fp16_model.py shared/minilm-fp16

`accelbench run --model DIR` loads it back in fp32 (models.build_model asks for float32), so the
halved file costs only the rounding of the pretrained weights to fp16, the same on every cell.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="directory to write (created)")
    args = parser.parse_args()

    import torch
    from transformers import AutoModel, AutoTokenizer

    from accelbench.data.models import bundled_dir

    source = bundled_dir()
    model = AutoModel.from_pretrained(source, dtype=torch.float16)
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out, safe_serialization=True)
    AutoTokenizer.from_pretrained(source).save_pretrained(args.out)
    size = sum(f.stat().st_size for f in args.out.iterdir() if f.is_file())
    print(f"{args.out}: {size / 2**20:.1f} MB, weights fp16, from {source}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
