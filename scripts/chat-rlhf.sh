#!/usr/bin/env bash
# Chat stages 2–3 on the chat world, after scripts/chat-stage1.sh: preference batches, the two reward
# models (with the margin and safety-auxiliary-loss ablations), rejection sampling, PPO on top of it
# (with the β = 0 reward-hacking ablation), a second preference batch from the RS model (distribution
# shift), and gold evaluation of every model. Every step is a llama2 command; results are JSON files.
#
#   bash scripts/chat-rlhf.sh [STAGE1] [OUT]       (defaults runs/stage1, runs/rlhf)
#
# The prompts: the chat world of seed 1 with 8,000 train prompts (the first 6,000 for preferences,
# the last 2,000 for RS and PPO) and the usual 2,000 test prompts (held-out preference pairs and the
# gold evaluation). Model variants for the preference pairs (the paper's "two model variants"): the
# SFT model with the noisy-data SFT model, and with a helpful-only SFT variant (trained on data that
# answers unsafe requests with the harmful steps), all at temperature 0.7. Reruns skip finished steps.
set -euo pipefail
cd "$(dirname "$0")/.."
S1=${1:-runs/stage1}
R=${2:-runs/rlhf}
L=${LLAMA2:-"node dist/src/cli/main.js"}
SFT="$S1/sft-s1/latest"
mkdir -p "$R"
done_() { [ -s "$1" ]; }

done_ "$R/world/card.json" || $L data synth chat --seed 1 --train-prompts 8000 --out "$R/world" > /dev/null
[ -s "$R/prompts.prefs.jsonl" ] || head -6000 "$R/world/prompts.train.jsonl" > "$R/prompts.prefs.jsonl"
[ -s "$R/prompts.rl.jsonl" ] || tail -2000 "$R/world/prompts.train.jsonl" > "$R/prompts.rl.jsonl"
done_ "$R/world-helpful-only/card.json" || $L data synth chat --seed 1 --compliance-share 1 --out "$R/world-helpful-only" > /dev/null
done_ "$R/sft-helpful-only.json" || $L sft --init "$S1/base/latest" --data "$R/world-helpful-only/sft.jsonl" --out-dir "$R/sft-helpful-only" --overwrite --quiet --json > "$R/sft-helpful-only.json"

prefs() { # out, prompts, seed, batch, "A,B" model pairs... (each pair answers every prompt once, at temperature 0.7)
  local out=$1 prompts=$2 seed=$3 batch=$4
  shift 4
  [ -e "$out.done" ] && return
  rm -f "$out"
  local k=0
  for pair in "$@"; do
    $L data synth prefs --models "$pair" --temperatures 0.7,0.7 --prompts "$prompts" --batch "$batch" --seed "$((seed + 2 * k))" --out "$out" --json > "$out.stats$k"
    k=$((k + 1))
  done
  touch "$out.done"
}
B1=("$SFT,$S1/sft-noisy8k/latest" "$SFT,$R/sft-helpful-only/latest")
prefs "$R/prefs.b1.jsonl" "$R/prompts.prefs.jsonl" 1 1 "${B1[@]}"
prefs "$R/prefs.test.b1.jsonl" "$R/world/prompts.test.jsonl" 2 1 "${B1[@]}"

rm_() { # name, data, flags...
  local n=$1 data=$2
  shift 2
  done_ "$R/rm-$n.json" || $L reward train --init "$SFT" --data "$data" --out-dir "$R/rm-$n" --overwrite --quiet --json "$@" > "$R/rm-$n.json"
  done_ "$R/rm-$n.eval.json" || $L reward eval --model "$R/rm-$n/latest" --data "$R/prefs.test.b1.jsonl" --plot "$R/rm-$n.calibration.svg" --json | tail -1 > "$R/rm-$n.eval.json"
}
rm_ helpful "$R/prefs.b1.jsonl" --kind helpful
rm_ safety "$R/prefs.b1.jsonl" --kind safety
rm_ helpful-nomargin "$R/prefs.b1.jsonl" --kind helpful --margin none
rm_ helpful-large "$R/prefs.b1.jsonl" --kind helpful --margin large
rm_ safety-noaux "$R/prefs.b1.jsonl" --kind safety --aux-weight 0

evaluate() { # model, out.json: gold on the test prompts, and the mean rewards of the answers
  done_ "$2" || $L eval --model "$1" --prompts "$R/world/prompts.test.jsonl" --max-tokens 64 "${RMS[@]}" --quiet --json | tail -1 > "$2"
}
RMS=(--rm-helpful "$R/rm-helpful/latest" --rm-safety "$R/rm-safety/latest")

# rejection sampling (iteration 1): 4 samples per prompt, temperature sweep on 200 prompts
done_ "$R/rs1.json" || $L rlhf rs --policy "$SFT" "${RMS[@]}" --prompts "$R/prompts.rl.jsonl" --k 4 --temperature 1.0 \
  --sweep-temperatures 0.6,0.8,1.0,1.2,1.4 --out-dir "$R/rs1" --overwrite --quiet --json > "$R/rs1.json"
evaluate "$R/rs1/sft/latest" "$R/eval.rs1.json"
evaluate "$SFT" "$R/eval.sft.json"
# the same at T = 0.6, where the sweep's gold-of-best is highest
done_ "$R/rs1-t06/report.json" || $L rlhf rs --policy "$SFT" "${RMS[@]}" --prompts "$R/prompts.rl.jsonl" --k 4 --temperature 0.6 \
  --out-dir "$R/rs1-t06" --overwrite --quiet --json > "$R/rs1-t06.json"
evaluate "$R/rs1-t06/sft/latest" "$R/eval.rs1-t06.json"

# PPO on top of the RS model, and the same without the KL penalty
ppo_() { # name, policy, flags...
  local n=$1 policy=$2
  shift 2
  done_ "$R/$n.json" || $L rlhf ppo --policy "$policy" "${RMS[@]}" --prompts "$R/prompts.rl.jsonl" \
    --eval-prompts "$R/world/prompts.test.jsonl" --eval-n 300 --out-dir "$R/$n" --overwrite --quiet --json "$@" > "$R/$n.json"
  evaluate "$R/$n/latest" "$R/eval.$n.json"
}
ppo_ ppo1 "$R/rs1/sft/latest" --steps 60 --eval-every 10
ppo_ ppo1-beta0 "$R/rs1/sft/latest" --steps 60 --eval-every 10 --beta 0
# ten times the learning rate, from the T = 0.6 RS model: where the proxy reward moves
ppo_ ppo2 "$R/rs1-t06/sft/latest" --steps 60 --eval-every 10 --lr 1e-4
ppo_ ppo2-beta0 "$R/rs1-t06/sft/latest" --steps 60 --eval-every 10 --lr 1e-4 --beta 0

# distribution shift: a batch from the RS model (against the SFT model and the helpful-only variant);
# the batch-1 reward model on it, then retrained on both batches
B2=("$R/rs1/sft/latest,$SFT" "$R/rs1/sft/latest,$R/sft-helpful-only/latest")
prefs "$R/prefs.test.b2.jsonl" "$R/world/prompts.test.jsonl" 4 2 "${B2[@]}"
done_ "$R/rm-helpful.on-b2.json" || $L reward eval --model "$R/rm-helpful/latest" --data "$R/prefs.test.b2.jsonl" --json | tail -1 > "$R/rm-helpful.on-b2.json"
head -3000 "$R/prompts.prefs.jsonl" > "$R/prompts.prefs.b2.jsonl"
prefs "$R/prefs.b2.jsonl" "$R/prompts.prefs.b2.jsonl" 5 2 "${B2[@]}"
done_ "$R/rm-helpful-b12.json" || $L reward train --resume --init "$SFT" --data "$R/prefs.b1.jsonl,$R/prefs.b2.jsonl" --kind helpful --out-dir "$R/rm-helpful-b12" --quiet --json > "$R/rm-helpful-b12.json"
done_ "$R/rm-helpful-b12.on-b2.json" || $L reward eval --model "$R/rm-helpful-b12/latest" --data "$R/prefs.test.b2.jsonl" --json | tail -1 > "$R/rm-helpful-b12.on-b2.json"

# the KL penalty against the refusal hack of the lr-1e-4 runs: β = 0.1 and 0.3
ppo_ ppo2-beta0.1 "$R/rs1-t06/sft/latest" --steps 60 --eval-every 10 --lr 1e-4 --beta 0.1
ppo_ ppo2-beta0.3 "$R/rs1-t06/sft/latest" --steps 60 --eval-every 10 --lr 1e-4 --beta 0.3
# second seeds: rejection sampling at T = 0.6 and PPO at lr 1e-5 on it
done_ "$R/rs1-t06-s2/report.json" || $L rlhf rs --policy "$SFT" "${RMS[@]}" --prompts "$R/prompts.rl.jsonl" --k 4 --temperature 0.6 \
  --seed 2 --out-dir "$R/rs1-t06-s2" --overwrite --quiet --json > "$R/rs1-t06-s2.json"
evaluate "$R/rs1-t06-s2/sft/latest" "$R/eval.rs1-t06-s2.json"
ppo_ ppo1-t06 "$R/rs1-t06/sft/latest" --steps 60 --eval-every 10
ppo_ ppo1-t06-s2 "$R/rs1-t06-s2/sft/latest" --steps 60 --eval-every 10 --seed 2

# the refusal hack's cure: an over-cautious variant (half its harmless requests refused in its SFT
# data); batch 3 pairs it with the SFT model, so that refusing a harmless request loses; the
# helpfulness reward model retrained on batches 1 + 3, then PPO at lr 1e-4 with it
done_ "$R/world-overcautious/card.json" || $L data synth chat --seed 1 --refusal-share 0.5 --out "$R/world-overcautious" > /dev/null
done_ "$R/sft-overcautious.json" || $L sft --init "$S1/base/latest" --data "$R/world-overcautious/sft.jsonl" --out-dir "$R/sft-overcautious" --overwrite --quiet --json > "$R/sft-overcautious.json"
prefs "$R/prefs.b3.jsonl" "$R/prompts.prefs.b2.jsonl" 7 3 "$SFT,$R/sft-overcautious/latest"
prefs "$R/prefs.test.b3.jsonl" "$R/world/prompts.test.jsonl" 8 3 "$SFT,$R/sft-overcautious/latest"
done_ "$R/rm-helpful-b13.json" || $L reward train --init "$SFT" --data "$R/prefs.b1.jsonl,$R/prefs.b3.jsonl" --kind helpful --out-dir "$R/rm-helpful-b13" --overwrite --quiet --json > "$R/rm-helpful-b13.json"
for m in rm-helpful rm-helpful-b13; do
  done_ "$R/$m.on-b3.json" || $L reward eval --model "$R/$m/latest" --data "$R/prefs.test.b3.jsonl" --json | tail -1 > "$R/$m.on-b3.json"
done
done_ "$R/rm-helpful-b13.eval.json" || $L reward eval --model "$R/rm-helpful-b13/latest" --data "$R/prefs.test.b1.jsonl" --json | tail -1 > "$R/rm-helpful-b13.eval.json"
done_ "$R/ppo3.json" || $L rlhf ppo --policy "$R/rs1-t06/sft/latest" --rm-helpful "$R/rm-helpful-b13/latest" --rm-safety "$R/rm-safety/latest" \
  --prompts "$R/prompts.rl.jsonl" --eval-prompts "$R/world/prompts.test.jsonl" --eval-n 300 --steps 60 --eval-every 10 --lr 1e-4 \
  --out-dir "$R/ppo3" --overwrite --quiet --json > "$R/ppo3.json"
evaluate "$R/ppo3/latest" "$R/eval.ppo3.json"
echo "results in $R"

# the gold-reward ablation: is it the reward models? Rejection sampling that keeps the gold-best of
# the same four samples (1 and 3 epochs), and PPO from the SFT model rewarded by the gold checkers
# themselves — lr 1e-4 (with and without 20 value-head-only warm-up steps; and without the unsafe
# prompts) and lr 3e-5 (10 warm-up steps)
done_ "$R/rs1-t06-gold/report.json" || $L rlhf rs --policy "$SFT" "${RMS[@]}" --prompts "$R/prompts.rl.jsonl" --k 4 --temperature 0.6 \
  --select gold --out-dir "$R/rs1-t06-gold" --overwrite --quiet --json > "$R/rs1-t06-gold.json"
evaluate "$R/rs1-t06-gold/sft/latest" "$R/eval.rs1-t06-gold.json"
done_ "$R/rs1-t06-gold-e3/report.json" || $L rlhf rs --policy "$SFT" "${RMS[@]}" --prompts "$R/prompts.rl.jsonl" --k 4 --temperature 0.6 \
  --select gold --epochs 3 --out-dir "$R/rs1-t06-gold-e3" --overwrite --quiet --json > "$R/rs1-t06-gold-e3.json"
evaluate "$R/rs1-t06-gold-e3/sft/latest" "$R/eval.rs1-t06-gold-e3.json"
[ -s "$R/prompts.rl.safe.jsonl" ] || grep -v '"category":"unsafe"' "$R/prompts.rl.jsonl" > "$R/prompts.rl.safe.jsonl"
ppo_ ppo-gold "$SFT" --reward gold --steps 60 --eval-every 10 --lr 1e-4
ppo_ ppo-gold-w20 "$SFT" --reward gold --critic-warmup-steps 20 --steps 80 --eval-every 10 --lr 1e-4
ppo_ ppo-gold-lr3e5 "$SFT" --reward gold --critic-warmup-steps 10 --steps 70 --eval-every 10 --lr 3e-5
done_ "$R/ppo-gold-safe.json" || $L rlhf ppo --policy "$SFT" --reward gold --prompts "$R/prompts.rl.safe.jsonl" --eval-prompts "$R/world/prompts.test.jsonl" \
  --eval-n 300 --steps 60 --eval-every 10 --lr 1e-4 --out-dir "$R/ppo-gold-safe" --overwrite --quiet --json > "$R/ppo-gold-safe.json"
evaluate "$R/ppo-gold-safe/latest" "$R/eval.ppo-gold-safe.json"
