#!/usr/bin/env bash
# Short multi-GPU runs of the image-classification and MLM example scripts on tiny generated data:
# DDP on 2 GPUs (examples/accelerate_configs/ddp.yaml), a resume from a mid-run checkpoint on 2 GPUs
# (final losses printed side by side), and one FSDP run (examples/accelerate_configs/fsdp.yaml).
#
#   bash examples/ddp_check.sh            # from the repository root, on a machine with >= 2 GPUs
#   NGPU=4 bash examples/ddp_check.sh     # more processes
#
# Packages the GPU image lacks (datasets, evaluate, and this project's transformers/huggingface_hub
# versions) are installed from wheels carried in .whl/ (see examples/README.md), into /tmp/site.
# SKIP_WHEELS=1 uses the installed packages as they are. A summary goes to $OUT/ddp_check.json when OUT is set (the device tool's output folder), else /tmp.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
NGPU=${NGPU:-2}
PY=${PYTHON:-python3}
RESULTS_DIR=${OUT:-/tmp}
WORK=$(mktemp -d /tmp/lion_ddp_check.XXXX)
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1

if [ -z "${SKIP_WHEELS:-}" ] && ls .whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$REPO:${PYTHONPATH:-}   # lion_hf from this checkout, no install needed
"$PY" - <<'EOF' || exit 1
import importlib
for name in ("torch", "transformers", "huggingface_hub", "accelerate", "datasets", "evaluate", "pyarrow", "lion_hf"):
    module = importlib.import_module(name)
    print(f"{name} {getattr(module, '__version__', '?')}")
import torch
print("GPUs:", torch.cuda.device_count(), [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())])
EOF

# ---- tiny data in the real formats: an imagefolder tree of PNGs, C4-style json.gz shards, a WordPiece vocabulary
"$PY" - "$WORK" <<'EOF' || exit 1
import gzip, json, random, sys
from pathlib import Path
import numpy as np
from PIL import Image
from transformers import BertTokenizer

root = Path(sys.argv[1])
rng = np.random.default_rng(0)
colours = {"bird": (200, 40, 40), "cat": (40, 200, 40), "dog": (40, 40, 200), "fish": (200, 200, 40)}
for split, count in (("train", 64), ("validation", 16)):
    for name, colour in colours.items():
        folder = root / "images" / split / name
        folder.mkdir(parents=True)
        for i in range(count):
            pixels = np.clip(np.array(colour) + rng.normal(0, 40, (32, 32, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{i:04d}.png")
words = "the cat dog sat on a mat and ran to house big small red blue green tree bird fish water sky sun".split()
r = random.Random(0)
(root / "c4").mkdir()
for name, count in (("c4-train.00000-of-00002", 400), ("c4-train.00001-of-00002", 400), ("c4-validation.00000-of-00001", 64)):
    with gzip.open(root / "c4" / f"{name}.json.gz", "wt") as f:
        for i in range(count):
            text = " ".join(r.choice(words) for _ in range(r.randint(20, 120))) + "."
            f.write(json.dumps({"text": text, "timestamp": "2019-04-25T12:57:54Z", "url": f"https://example.com/{i}"}) + "\n")
(root / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, "."]) + "\n")
BertTokenizer(str(root / "vocab.txt")).save_pretrained(root / "tokenizer")
print("data in", root)
EOF

LAUNCH_DDP=("$PY" -m accelerate.commands.launch --config_file examples/accelerate_configs/ddp.yaml --num_processes "$NGPU")
LAUNCH_FSDP=("$PY" -m accelerate.commands.launch --config_file examples/accelerate_configs/fsdp.yaml --num_processes "$NGPU")
IMAGE=(examples/image_classification/run_image_classification.py --dataset imagefolder --data_dir "$WORK/images"
       --image_size 32 --patch_size 4 --hidden_size 64 --num_hidden_layers 2 --num_attention_heads 4
       --per_device_train_batch_size 16 --per_device_eval_batch_size 32 --learning_rate 1e-3 --warmup_steps 2
       --max_train_steps 12 --checkpointing_steps 6 --logging_steps 2 --seed 1)
MLM=(examples/mlm/run_mlm.py --train_files "$WORK/c4/c4-train.*.json.gz"
     --validation_files "$WORK/c4/c4-validation.00000-of-00001.json.gz" --tokenizer_name "$WORK/tokenizer"
     --hidden_size 64 --num_hidden_layers 2 --num_attention_heads 4 --per_device_train_batch_size 16
     --max_train_steps 12 --checkpointing_steps 6 --logging_steps 2 --seed 1 --pack)

declare -A STATUS
run() {  # run NAME CMD...: keep going on failure, remember the status
  local name=$1; shift
  echo "===== $name: $*"
  local started=$SECONDS
  if "$@" > "$WORK/$name.log" 2>&1; then STATUS[$name]="ok $((SECONDS - started))s"; else STATUS[$name]="FAILED (exit $?)"; tail -40 "$WORK/$name.log"; fi
  grep -E "saved the model|resumed from|Error|error:" "$WORK/$name.log" | tail -3
}

run image_ddp "${LAUNCH_DDP[@]}" "${IMAGE[@]}" --output_dir "$WORK/image_ddp"
run image_ddp_resumed "${LAUNCH_DDP[@]}" "${IMAGE[@]}" --output_dir "$WORK/image_ddp_resumed" \
    --resume_from_checkpoint "$WORK/image_ddp/checkpoint-6"
run mlm_ddp "${LAUNCH_DDP[@]}" "${MLM[@]}" --output_dir "$WORK/mlm_ddp"
run mlm_ddp_resumed "${LAUNCH_DDP[@]}" "${MLM[@]}" --output_dir "$WORK/mlm_ddp_resumed" \
    --resume_from_checkpoint "$WORK/mlm_ddp/checkpoint-6"
run image_fsdp "${LAUNCH_FSDP[@]}" "${IMAGE[@]}" --output_dir "$WORK/image_fsdp" --drop_path 0
run mlm_fsdp "${LAUNCH_FSDP[@]}" "${MLM[@]}" --output_dir "$WORK/mlm_fsdp"

STATUS_JSON=$(for k in "${!STATUS[@]}"; do printf '%s\t%s\n' "$k" "${STATUS[$k]}"; done)
"$PY" - "$WORK" "$RESULTS_DIR/ddp_check.json" "$NGPU" "$STATUS_JSON" <<'EOF'
import json, sys
from pathlib import Path
work, target, ngpu, status = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
summary = {"processes": ngpu, "runs": {}}
for line in status.strip().splitlines():
    name, state = line.split("\t")
    results = work / name / "all_results.json"
    summary["runs"][name] = {"status": state, **(json.loads(results.read_text()) if results.is_file() else {})}
for pair in (("image_ddp", "image_ddp_resumed"), ("mlm_ddp", "mlm_ddp_resumed")):
    a, b = (summary["runs"].get(n, {}).get("train_loss") for n in pair)
    summary[f"{pair[0]}_resume_final_loss"] = {"uninterrupted": a, "resumed": b, "identical": a is not None and a == b}
target.write_text(json.dumps(summary, indent=2))
print(json.dumps(summary, indent=2))
EOF
cp "$WORK"/*.log "$RESULTS_DIR"/ 2>/dev/null || true
for k in "${!STATUS[@]}"; do [[ ${STATUS[$k]} == ok* ]] || exit 1; done
