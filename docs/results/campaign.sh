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
# SURGE costs several times CLSR per step (docs/results/README.md), so the other models run first
# and their tables are complete hours before SURGE's are.
FAST=clsr,sli_rec,gru,caser,a2svd,nextitnet,sum
ABLATIONS=no_contrastive,alpha_0.5,no_interest_evolve,rnn_gru,rnn_lstm,attention_inner_product

compare() {  # DATA MODEL_LIST [extra arguments]
  data=$1 models=$2
  shift 2
  python -m clsr_tf.compare --hparams hparams/$data.yaml --models "$models" $BUDGET \
    --output-dir "$ROOT/$data" --quiet "$@" || echo "campaign: a model of $data failed (its row says why)"
}

# Seed 1 of every model on MovieLens first, SURGE's with both protocols: the side-by-side of
# sampled and full-ranking metrics (issue 12) is then complete before the other seeds start.
compare movielens $FAST --seeds 1
compare movielens $MODELS --seeds 1 --protocol both
compare movielens $FAST
compare synthetic $MODELS
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
compare movielens $MODELS
# The second protocol on the converged CLSR and SURGE models (from their best weights).
compare movielens $MODELS --protocol both
