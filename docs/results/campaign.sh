#!/bin/sh
# The results campaign of docs/results/: converged, multi-seed comparisons on the embedded
# MovieLens and on the synthetic data set, then the disentanglement studies on the converged
# CLSR models. Every step is resumable: run this script again after an interruption and it
# continues where it stopped (finished (model, seed) runs are kept, a killed one resumes from
# its last epoch's checkpoint).
#
# Usage: sh docs/results/campaign.sh RUNS_ROOT   (from the repository root; hours on 2 cores)
set -u
ROOT=${1:?usage: campaign.sh RUNS_ROOT}
# Every model: early stopping on valid GAUC, patience 3, at most 20 epochs; hyper-parameters
# from its own YAML. Three seeds for CLSR, SURGE, SLi-Rec and GRU, the first for the others.
BUDGET="--seeds 1,2,3 --first-seed-only caser,a2svd,nextitnet,sum --epochs 20 --set EARLY_STOP=3"
MODELS=clsr,surge,sli_rec,gru,caser,a2svd,nextitnet,sum
FAST=clsr,sli_rec,gru,caser,a2svd,nextitnet,sum
ABLATIONS=no_contrastive,alpha_0.5,no_interest_evolve,rnn_gru,rnn_lstm,attention_inner_product

compare() {  # DATA MODEL_LIST [extra arguments]
  data=$1 models=$2
  shift 2
  python -m clsr_tf.compare --hparams hparams/$data.yaml --models "$models" $BUDGET \
    --output-dir "$ROOT/$data" --quiet "$@" || echo "campaign: a model of $data failed (its row says why)"
}

surge() {  # DATA [extra arguments]: SURGE alone, in a comparison folder of its own (a
  # comparison holds its folder) whose surge/ is the campaign's, beside the other models
  data=$1
  shift
  mkdir -p "$ROOT/$data/surge" "$ROOT/${data}_surge"
  [ -L "$ROOT/${data}_surge/surge" ] || ln -s "../$data/surge" "$ROOT/${data}_surge/surge"
  python -m clsr_tf.compare --hparams hparams/$data.yaml --models surge --seeds 1,2,3 \
    --epochs 20 --set EARLY_STOP=3 --output-dir "$ROOT/${data}_surge" --quiet "$@" \
    || echo "campaign: SURGE on $data failed (its row says why)"
}

# Each training process keeps about one core busy, so SURGE (several times CLSR's cost per
# step) trains beside the others: seed 1 on MovieLens with both protocols first (issue 12's
# side-by-side), then its other seeds, then the synthetic set.
(surge movielens --seeds 1 --protocol both; surge movielens --protocol both; surge synthetic) &
SURGE_CHAIN=$!
# Seed 1 of every other model on MovieLens, then their full ranking, then the other seeds.
compare movielens $FAST --seeds 1
compare movielens $FAST --seeds 1 --protocol both
compare movielens $FAST
compare synthetic $FAST
# Disentanglement studies (paper 4.2-4.3) on the three converged CLSR models of MovieLens.
for STUDY in shuffle truncate one_side fusion_weight; do
  python -m clsr_tf.study $STUDY --hparams hparams/movielens.yaml --seeds 1,2,3 \
    --weights "$ROOT/movielens/clsr/seed_{seed}/best_model" \
    --output-dir "$ROOT/movielens/studies" --quiet
done
# The ablation rows that matter most, at convergence (seed 1; every row resumable). Their
# reference is CLSR seed 1 of the comparison: the same hyper-parameters, seed and budget.
ablations() {  # DATA
  python -m clsr_tf.study ablations --hparams hparams/$1.yaml --only "$ABLATIONS" --seeds 1 \
    --epochs 20 --set EARLY_STOP=3 --output-dir "$ROOT/$1/studies" --quiet \
    || echo "campaign: an ablation of $1 failed (its row says why)"
}
ablations synthetic
ablations movielens
wait $SURGE_CHAIN
# The tables of every model together, with the full ranking of every converged model (from
# its best weights; nothing trains again).
compare movielens $MODELS --protocol both
compare synthetic $MODELS
