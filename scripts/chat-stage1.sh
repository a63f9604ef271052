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

# Ghost Attention, on a world whose SFT set has more system prompts (--system-share 0.6: 30% of the
# dialogs carry an instruction), so the SFT model follows one in the first turn before GAtt teaches
# it to keep it: GAtt data sampled from that SFT model, one epoch on its SFT data + the GAtt data;
# the control trains as many steps on the SFT data alone
G="$OUT/gatt"
mkdir -p "$G"
done_ "$G/world/card.json" || $L data synth chat --seed 1 --system-share 0.6 --out "$G/world" > /dev/null
done_ "$G/sft.json" || $L sft --init "$OUT/base/latest" --data "$G/world/sft.jsonl" --out-dir "$G/sft" --overwrite --quiet --json > "$G/sft.json"
done_ "$G/gatt-data.json" || $L data gatt --model "$G/sft/latest" --out "$G/gatt.jsonl" --dialogs 800 --turns 6 --seed 1 --json > "$G/gatt-data.json"
done_ "$G/sft-gatt.json" || $L sft --init "$G/sft/latest" --data "$G/world/sft.jsonl,$G/gatt.jsonl" --epochs 1 \
  --out-dir "$G/sft-gatt" --overwrite --quiet --json > "$G/sft-gatt.json"
steps=$(node -e "console.log(JSON.parse(require('fs').readFileSync('$G/sft-gatt.json','utf8')).steps)")
done_ "$G/sft-more.json" || $L sft --init "$G/sft/latest" --data "$G/world/sft.jsonl" --steps "$steps" \
  --out-dir "$G/sft-more" --overwrite --quiet --json > "$G/sft-more.json"
for m in sft sft-more sft-gatt; do
  done_ "$G/gatt.$m.json" || $L eval gatt --model "$G/$m/latest" --dialogs 100 --turns 20 --seed 7 --quiet --json | tail -1 > "$G/gatt.$m.json"
  evaluate "$G/$m/latest" "$G/eval.$m.json"
done
echo "results in $OUT: eval.*.json (gold evaluation), gatt.*.json (Ghost Attention), *.json (training summaries)"
