#!/usr/bin/env bash
# Chat stage 1 on the chat world, end to end: the README's SFT, clean-vs-noisy and Ghost Attention
# numbers. Every step is a llama2 command; results land in OUT as JSON (one file per measurement).
#
#   bash scripts/chat-stage1.sh [OUT]          (default runs/stage1; ~40 min on 2 cores)
#
# Steps: a base model pretrained on stories + the world's documents (configs/chat-base.json); the
# chat world (seed 1) with its default files, a small clean SFT set (1,000 dialogs) and a large noisy
# one (8,000, half of the answers flawed third-party ones); SFT with two seeds and on the clean and
# noisy sets; gold evaluation of each on prompts.test.jsonl (2,000 prompts, greedy); Ghost Attention
# data sampled from the SFT model, GAtt fine-tuning (and a control fine-tuned as long without it);
# the Table-30 evaluation (100 dialogs of 20 turns) of all three. Reruns skip finished steps.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/stage1}
L="node dist/src/cli/main.js"
mkdir -p "$OUT"
done_() { [ -s "$1" ]; }

done_ "$OUT/base.json" || $L pretrain --config configs/chat-base.json --out-dir "$OUT/base" --overwrite --quiet --json > "$OUT/base.json"
done_ "$OUT/world/card.json" || $L data synth chat --seed 1 --out "$OUT/world" > /dev/null
done_ "$OUT/world-clean1k/card.json" || $L data synth chat --seed 1 --sft 1000 --out "$OUT/world-clean1k" > /dev/null
done_ "$OUT/world-noisy8k/card.json" || $L data synth chat --seed 1 --sft 8000 --noisy-share 0.5 --out "$OUT/world-noisy8k" > /dev/null

evaluate() { # model, out.json
  done_ "$2" || $L eval --model "$1" --prompts "$OUT/world/prompts.test.jsonl" --max-tokens 64 --quiet --json | tail -1 > "$2"
}
sft() { # name, data, extra flags...
  local name=$1 data=$2
  shift 2
  done_ "$OUT/$name.json" || $L sft --init "$OUT/base/latest" --data "$data" --out-dir "$OUT/$name" --overwrite --quiet --json "$@" > "$OUT/$name.json"
  evaluate "$OUT/$name/latest" "$OUT/eval.$name.json"
}

evaluate "$OUT/base/latest" "$OUT/eval.base.json"
sft sft-s1 "$OUT/world/sft.jsonl" --seed 1
sft sft-s2 "$OUT/world/sft.jsonl" --seed 2
sft sft-clean1k "$OUT/world-clean1k/sft.jsonl" --seed 1
sft sft-noisy8k "$OUT/world-noisy8k/sft.jsonl" --seed 1

# Ghost Attention: data from the SFT model, then one epoch on SFT data + GAtt data; the control
# trains as many steps on the SFT data alone
done_ "$OUT/gatt-data.json" || $L data gatt --model "$OUT/sft-s1/latest" --out "$OUT/gatt.jsonl" --dialogs 400 --turns 6 --seed 1 --json > "$OUT/gatt-data.json"
done_ "$OUT/sft-gatt.json" || $L sft --init "$OUT/sft-s1/latest" --data "$OUT/world/sft.jsonl,$OUT/gatt.jsonl" --epochs 1 \
  --out-dir "$OUT/sft-gatt" --overwrite --quiet --json > "$OUT/sft-gatt.json"
steps=$(node -e "console.log(JSON.parse(require('fs').readFileSync('$OUT/sft-gatt.json','utf8')).steps)")
done_ "$OUT/sft-more.json" || $L sft --init "$OUT/sft-s1/latest" --data "$OUT/world/sft.jsonl" --steps "$steps" \
  --out-dir "$OUT/sft-more" --overwrite --quiet --json > "$OUT/sft-more.json"
for m in sft-s1 sft-more sft-gatt; do
  done_ "$OUT/gatt.$m.json" || $L eval gatt --model "$OUT/$m/latest" --dialogs 100 --turns 20 --seed 7 --quiet --json | tail -1 > "$OUT/gatt.$m.json"
done
evaluate "$OUT/sft-gatt/latest" "$OUT/eval.sft-gatt.json"
echo "results in $OUT: eval.*.json (gold evaluation), gatt.*.json (Ghost Attention), *.json (training summaries)"
