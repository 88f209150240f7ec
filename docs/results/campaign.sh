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

for DATA in movielens synthetic; do
  python -m clsr_tf.compare --hparams hparams/$DATA.yaml --models $MODELS $BUDGET \
    --output-dir "$ROOT/$DATA" --quiet || echo "campaign: a model of $DATA failed (its row says why)"
done
# The second protocol on the converged CLSR and SURGE models (from their best weights).
python -m clsr_tf.compare --hparams hparams/movielens.yaml --models $MODELS $BUDGET \
  --output-dir "$ROOT/movielens" --quiet --protocol both || echo "campaign: see the table"
# Disentanglement studies (paper 4.2-4.3) on the three converged CLSR models of MovieLens.
for STUDY in shuffle truncate one_side fusion_weight; do
  python -m clsr_tf.study $STUDY --hparams hparams/movielens.yaml --seeds 1,2,3 \
    --weights "$ROOT/movielens/clsr/seed_{seed}/best_model" \
    --output-dir "$ROOT/movielens/studies" --quiet
done
