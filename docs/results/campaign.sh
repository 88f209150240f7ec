#!/bin/sh
# The results campaign of docs/results/: converged, multi-seed comparisons on the embedded
# MovieLens and on the synthetic data set, then the disentanglement studies on the converged
# CLSR models. Every step is resumable: run this script again after an interruption and it
# continues where it stopped (finished (model, seed) runs are kept, a killed one resumes from
# its last epoch's checkpoint), on this machine or, from the records that report.sh and
# `records.py save --in-progress` commit, on a new one.
#
# Usage: sh docs/results/campaign.sh RUNS_ROOT   (from the repository root; hours on 2 cores)
set -u
ROOT=${1:?usage: campaign.sh RUNS_ROOT}
# A new machine continues where the last one stopped: the runs finished on earlier machines are
# kept in the repository (docs/results/runs/, by report.sh) and restored into RUNS_ROOT first.
python "$(dirname "$0")/records.py" restore "$ROOT" || exit 2
# Every model: early stopping on valid GAUC, patience 3, at most 20 epochs; hyper-parameters
# from its own YAML. Three seeds for CLSR, SURGE, SLi-Rec and GRU, the first for the others.
BUDGET="--epochs 20 --set EARLY_STOP=3"
SEEDS="--seeds 1,2,3"
MODELS=clsr,surge,sli_rec,gru,caser,a2svd,nextitnet,sum
ONCE=caser,a2svd,nextitnet,sum
MAIN=clsr,sli_rec,gru,caser,a2svd,nextitnet  # SURGE and SUM train in the side chain
ABLATIONS=no_contrastive,alpha_0.5,no_interest_evolve,rnn_gru,rnn_lstm,attention_inner_product

compare() {  # DATA MODEL_LIST [extra arguments]
  data=$1 models=$2
  shift 2
  python -m clsr_tf.compare --hparams hparams/$data.yaml --models "$models" $BUDGET \
    --output-dir "$ROOT/$data" --quiet "$@" || echo "campaign: a model of $data failed (its row says why)"
}

side() {  # DATA MODEL [extra arguments]: one model in a comparison folder of its own (a
  # comparison holds its folder) whose MODEL/ is the campaign's, beside the other models
  data=$1 model=$2
  shift 2
  mkdir -p "$ROOT/$data/$model" "$ROOT/${data}_$model"
  [ -L "$ROOT/${data}_$model/$model" ] || ln -s "../$data/$model" "$ROOT/${data}_$model/$model"
  python -m clsr_tf.compare --hparams hparams/$data.yaml --models "$model" $BUDGET \
    --output-dir "$ROOT/${data}_$model" --quiet "$@" \
    || echo "campaign: $model on $data failed (its row says why)"
}

# The ablation rows that matter most, at convergence (seed 1; every row resumable). Their
# reference is CLSR seed 1 of the comparison: the same hyper-parameters, seed and budget.
ablations() {  # DATA
  python -m clsr_tf.study ablations --hparams hparams/$1.yaml --only "$ABLATIONS" --seeds 1 \
    $BUDGET --output-dir "$ROOT/$1/studies" --quiet \
    || echo "campaign: an ablation of $1 failed (its row says why)"
}
# Each training process keeps about one core busy, so the two costliest models train in a
# side chain beside the others: SUM, then SURGE (several times CLSR's cost per step), seed 1
# first, then the MovieLens ablations (the longest grid; should they hold the studies' folder
# while a study of the main chain starts, that study says so, and running this script again
# does it). Every MovieLens run is scored under both protocols as soon as it has trained,
# while its weights are on the machine (the kept records hold no weights).
(side movielens sum --seeds 1 --protocol both; side movielens surge --seeds 1 --protocol both
 side movielens surge $SEEDS --protocol both; side synthetic surge $SEEDS; ablations movielens) &
SIDE_CHAIN=$!
# Seed 1 of every other model on MovieLens (issue 12's side-by-side), then the other seeds.
compare movielens $MAIN --seeds 1 --protocol both
compare movielens $MAIN $SEEDS --first-seed-only caser,a2svd,nextitnet --protocol both
# Disentanglement studies (paper 4.2-4.3) on the three converged CLSR models of MovieLens; a
# study whose tables were published (restored by records.py) is not run again.
for STUDY in shuffle truncate one_side fusion_weight; do
  [ -f "$ROOT/movielens/studies/${STUDY}_summary.csv" ] && continue
  python -m clsr_tf.study $STUDY --hparams hparams/movielens.yaml $SEEDS \
    --weights "$ROOT/movielens/clsr/seed_{seed}/best_model" \
    --output-dir "$ROOT/movielens/studies" --quiet
done
compare synthetic clsr,sli_rec,gru,caser,a2svd,nextitnet,sum $SEEDS --first-seed-only $ONCE
ablations synthetic
wait $SIDE_CHAIN
# The tables of every model together (nothing trains again).
compare movielens $MODELS $SEEDS --first-seed-only $ONCE --protocol both
compare synthetic $MODELS $SEEDS --first-seed-only $ONCE
