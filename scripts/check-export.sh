#!/usr/bin/env bash
# Checks `llama2 export` against the engines themselves. It trains a small chat model (the chat
# world: a short pretraining on configs/chat-base.json, then SFT) or takes the model given, exports
# it to GGUF f32 and q8_0, and asks llama.cpp (bench/build-llama-cpp.sh builds llama-simple and
# llama-perplexity) for
#   - the greedy continuation of a chat prompt: llama-simple's text must equal `llama2 generate
#     --temperature 0`'s, token for token (compared as text: llama-simple prints pieces), or part
#     only at a near tie (llama2's top two logits closer than TIE_GAP there: scripts/greedy-gap.mjs);
#   - the perplexity of a held-out text under llama-perplexity's protocol (windows of --ctx tokens,
#     the first replaced by BOS, the second half of each window scored): `llama2 perplexity
#     --protocol llama.cpp` computes the same quantity, and the two must agree within PPL_TOL.
# Then, where Debian's python3-torch is installed, the HF export is loaded in Python by an
# independent forward (scripts/check-export-hf.py: HF layout, rotate_half RoPE, as transformers'
# LlamaForCausalLM computes it) and its logits compared with `llama2`'s, and the chat template of
# tokenizer_config.json is rendered with jinja2 and compared with llama2's chat format.
#
#   bash scripts/check-export.sh [--model CKPT] [--work DIR]     (default work dir: runs/check-export)
#
# Prints one line per check and a JSON summary last; exits 1 when a check fails.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
work=runs/check-export
model=""
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    *) echo "check-export: unknown argument $1 (expected --model CKPT, --work DIR)" >&2; exit 2 ;;
  esac
done
bin="$root/bench/.cache/llama.cpp/build/bin"
for t in llama-simple llama-perplexity; do
  [ -x "$bin/$t" ] || { echo "check-export: $bin/$t not found (build it with: bash bench/build-llama-cpp.sh)" >&2; exit 2; }
done
llama2() { node "$root/dist/src/cli/main.js" "$@"; }
mkdir -p "$work"
PPL_TOL=${PPL_TOL:-0.001}   # relative difference of the perplexities (f32 sums of exps in different orders)
N_PREDICT=${N_PREDICT:-48}
CTX=${CTX:-256}
TIE_GAP=${TIE_GAP:-0.05}   # greedy paths may part where llama2's top two logits are closer than this

# 1. a chat model: the chat world, ~3 min of pretraining and ~1 min of SFT on 2 cores (kept for reruns)
[ -f "$work/world/sft.jsonl" ] || llama2 data synth chat --seed 1 --out "$work/world" --sft 3000 --train-prompts 100 --test-prompts 100 >/dev/null
if [ -z "$model" ]; then
  [ -f "$work/base/latest.json" ] || llama2 pretrain --config configs/chat-base.json --steps=${PRETRAIN_STEPS:-300} --eval-every=0 \
    --ckpt-every=0 --stories-count=4000 --world-docs=8000 --out-dir="$work/base" --quiet >/dev/null
  [ -f "$work/sft/latest.json" ] || llama2 sft --init "$work/base/latest" --data "$work/world/sft.jsonl" --steps ${SFT_STEPS:-150} \
    --eval-every 0 --ckpt-every 0 --out-dir "$work/sft" --quiet >/dev/null
  model="$work/sft/latest"
fi
echo "model: $model"

# a text for perplexity: the turns of the chat world's test prompts (not trained on)
text="$work/heldout.txt"
node -e '
  const fs = require("fs");
  const lines = fs.readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => JSON.parse(l));
  const out = [];
  for (const l of lines) for (const m of l.messages ?? []) out.push(m.content);
  fs.writeFileSync(process.argv[2], out.join("\n\n") + "\n");
' "$work/world/prompts.test.jsonl" "$text"

fails=0
results=()
prompts=('Once upon a time' '[INST] Tell me a story in 2 sentences about Jelly the piglet and a blue whistle. [/INST]'
  '[INST] How many times does the letter r appear in pear? [/INST]' '[INST] My frog Waffles is silver. [/INST]')
for dtype in f32 q8_0; do
  gguf="$work/model-$dtype.gguf"
  llama2 export --model "$model" --to gguf --dtype "$dtype" --out "$gguf" --overwrite >/dev/null

  # greedy continuations: llama-simple prints the prompt's pieces then the new ones; llama2 --json gives the new text
  same_all=true near_ties=true max_gap=0
  for prompt in "${prompts[@]}"; do
    ours=$(llama2 generate --model "$gguf" --prompt "$prompt" --temperature 0 --max-tokens "$N_PREDICT" --json \
      | node -e 'let s="";process.stdin.on("data",(d)=>s+=d).on("end",()=>process.stdout.write(JSON.parse(s.trim().split("\n").pop()).text))')
    theirs=$("$bin/llama-simple" -m "$gguf" -n "$N_PREDICT" "$prompt" 2>/dev/null)
    theirs_new=${theirs#*"$prompt"}   # it prints "<s>", the prompt's pieces, then the new ones
    theirs_new=${theirs_new# } ours=${ours# }   # llama-simple prints the first new piece's space; a decoded text drops it
    if [ "$theirs_new" != "$ours" ]; then
      same_all=false
      echo "  differs on $(printf %q "$prompt"):"; echo "    llama2:    $(printf %q "$ours")"; echo "    llama.cpp: $(printf %q "$theirs_new")"
      # a near tie that rounding decides is not a disagreement: how far apart were llama2's top two logits there?
      gap=$(node scripts/greedy-gap.mjs "$gguf" "$prompt" "$theirs_new" "$N_PREDICT")
      echo "    where they part: $gap"
      near=$(node -e 'const g=JSON.parse(process.argv[1]);process.stdout.write(String(g.top2_gap!==undefined&&g.top2_gap<Number(process.argv[2])))' "$gap" "$TIE_GAP")
      [ "$near" = true ] || near_ties=false
      max_gap=$(node -e 'process.stdout.write(String(Math.max(Number(process.argv[1]),JSON.parse(process.argv[2]).top2_gap??Infinity)))' "$max_gap" "$gap")
    fi
  done
  [ "$same_all" = true ] || [ "$near_ties" = true ] || fails=$((fails + 1))
  echo "gguf $dtype greedy (${#prompts[@]} prompts, up to $N_PREDICT tokens): llama2 and llama.cpp identical: $same_all; every difference a near tie (top-2 logit gap < $TIE_GAP): $near_ties"
  same="$same_all, \"greedy_near_ties\": $near_ties, \"greedy_max_gap_where_parted\": $max_gap"

  # perplexity under llama-perplexity's protocol
  ppl_ours=$(llama2 perplexity --model "$gguf" --file "$text" --ctx "$CTX" --protocol llama.cpp --json \
    | node -e 'let s="";process.stdin.on("data",(d)=>s+=d).on("end",()=>process.stdout.write(String(JSON.parse(s.trim().split("\n").pop()).ppl)))')
  # llama.cpp's log is written by a thread of its own and now and then loses its last lines at exit: ask again
  ppl_theirs=""
  for _ in 1 2 3; do
    [ -n "$ppl_theirs" ] && break
    ppl_theirs=$("$bin/llama-perplexity" -m "$gguf" -f "$text" -c "$CTX" -b "$CTX" 2>&1 | sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p')
  done
  ok=$(node -e 'const [a,b,t]=process.argv.slice(1).map(Number);process.stdout.write(String(Number.isFinite(a)&&Number.isFinite(b)&&Math.abs(a-b)/b<=t))' "$ppl_ours" "$ppl_theirs" "$PPL_TOL")
  [ "$ok" = true ] || fails=$((fails + 1))
  echo "gguf $dtype perplexity (ctx $CTX): llama2 $ppl_ours, llama.cpp $ppl_theirs, within ${PPL_TOL} relative: $ok"
  results+=("\"$dtype\": {\"greedy_identical\": $same, \"ppl_llama2\": $ppl_ours, \"ppl_llama_cpp\": ${ppl_theirs:-null}, \"ppl_within_tol\": $ok}")
done

# HF export in Python (torch from Debian), where available
hf="null"
if /usr/bin/python3 -c 'import torch, numpy' 2>/dev/null; then
  llama2 export --model "$model" --to hf --out "$work/model-hf" --overwrite >/dev/null
  if hf=$(/usr/bin/python3 scripts/check-export-hf.py "$work/model-hf"); then :; else fails=$((fails + 1)); fi
  echo "hf (python): $hf"
else
  echo "hf (python): skipped: /usr/bin/python3 lacks torch/numpy (apt-get install python3-torch python3-numpy)"
fi
echo "{\"model\": \"$model\", \"ctx\": $CTX, \"n_predict\": $N_PREDICT, \"ppl_tol\": $PPL_TOL, $(IFS=,; echo "${results[*]}"), \"hf\": $hf, \"failures\": $fails}"
[ "$fails" -eq 0 ]
