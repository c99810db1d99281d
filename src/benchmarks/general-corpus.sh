# Sourced by the pretraining scripts: the unlabelled text the project's own models are pretrained on —
# NLTK's Project Gutenberg books (public domain) and the text column of this project's own training splits (CC0).
#   general_corpus DATASETS_DIR OUT_DIR   # sets the array `general` to the files
general_corpus() {
  local data="$1" dir="$2/corpus"
  mkdir -p "$dir"
  for set in sentiment support-tickets; do
    tail -n +2 "$repo/datasets/$set/train.tsv" | cut -f2- > "$dir/$set-train.txt"
  done
  general=("$data"/gutenberg-nltk/*.txt "$dir/sentiment-train.txt" "$dir/support-tickets-train.txt")
}
