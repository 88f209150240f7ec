#!/bin/sh
# The tables of a campaign's finished runs so far, into docs/results/DATA/ (nothing trains):
# the records of the runs finished in RUNS_ROOT are kept in docs/results/runs/ (records.py
# save) and those kept from earlier machines restored into RUNS_ROOT; every model's run
# folders, SURGE's and SUM's included (campaign.sh trains them in folders of their own), are
# linked into RUNS_ROOT/DATA_report, whose tables `compare --tables-only` writes and
# collect.py copies with their provenance, and with them the studies' tables (DATA/studies/).
# Safe while the campaign runs. From a plain clone, any empty RUNS_ROOT rebuilds the committed
# comparison tables from the kept records (the studies' tables are kept only as published).
#
# Usage: sh PATH/TO/docs/results/report.sh RUNS_ROOT DATA
# from the checkout the campaign runs in (its data and code); the records and tables go to the
# docs/results/ beside this script, which may be another checkout's.
set -eu
ROOT=${1:?usage: report.sh RUNS_ROOT DATA}
DATA=${2:?usage: report.sh RUNS_ROOT DATA}
HERE=$(dirname "$0")
mkdir -p "$ROOT"
python "$HERE/records.py" save "$ROOT"
python "$HERE/records.py" restore "$ROOT"
REPORT=$ROOT/${DATA}_report
mkdir -p "$REPORT"
for m in clsr surge sli_rec gru caser a2svd nextitnet sum studies; do
  [ -L "$REPORT/$m" ] || ln -s "../$DATA/$m" "$REPORT/$m"
done
# The runs record the absolute data folder they trained on, which any other checkout (a plain
# clone rebuilding the tables) would otherwise see as other hyper-parameters.
DATA_DIR=$(python -c "import glob, json, sys
found = [json.load(open(p)) for p in sorted(glob.glob(sys.argv[1] + '/*/seed_*/hparams.json'))]
print(next((hp['data_dir'] for hp in found if 'data_dir' in hp), ''))" "$ROOT/$DATA")
# A full-ranking table where the runs were scored in full ranking (campaign.sh does it for
# MovieLens only: the kept records hold no weights to score later), else none.
PROTOCOL=sampled
grep -lq '"test_full"' "$ROOT/$DATA"/*/seed_*/result.json 2>/dev/null && PROTOCOL=both
rm -f "$REPORT/comparison_full.md" "$REPORT/comparison_full.csv"
# Exit status 1 only says that some runs have not finished.
python -m clsr_tf.compare --hparams hparams/$DATA.yaml ${DATA_DIR:+--data-dir "$DATA_DIR"} \
  --models clsr,surge,sli_rec,gru,caser,a2svd,nextitnet,sum \
  --seeds 1,2,3 --first-seed-only caser,a2svd,nextitnet,sum --epochs 20 --set EARLY_STOP=3 \
  --protocol $PROTOCOL --output-dir "$REPORT" --quiet --tables-only > "$REPORT/report.log" 2>&1 \
  || grep -q "^== tables of the" "$REPORT/report.log"
python "$HERE/collect.py" "$REPORT" "$DATA" --command "sh docs/results/campaign.sh \
RUNS_ROOT (in progress: the tables of its finished runs, by sh docs/results/report.sh)"
