using System.Globalization;
using System.Text;
using MLNetTransformerExtensions.Modeling;

namespace MLNetTransformerExtensions.Training.Pretraining;

/// <summary>
/// The model card (README.md) a pretraining run writes beside the HuggingFace files, as the hub's model cards do:
/// architecture and size, vocabulary, objective, optimiser settings, validation loss, the training text's files with
/// their SHA-256, and how to load the model.
/// </summary>
internal sealed class PretrainedModelCard(
    string folderName, LanguageModel model, PretrainingOptions options, bool trainedTokenizer, int maxLength, double learningRate,
    IReadOnlyList<InputFile> inputs, IReadOnlyList<InputFile> validationInputs)
{
    /// <summary>The README: what the model is, how it was trained, on which text, and how to use it.</summary>
    public string Write(int step, int epochs, List<ValidationPoint> history, int validationSequences)
    {
        var isEncoder = options.Kind == PretrainingKind.Encoder;
        var config = model.Config;
        var architecture = PretrainedModelFolder.Architecture(config.Family);
        var text = new StringBuilder();
        void Line(FormattableString line) => text.Append(line.ToString(CultureInfo.InvariantCulture)).Append('\n');

        Line($"# {folderName}");
        Line($"");
        var origin = options.From is { } from ? $"continued from `{from}` (domain-adaptive pretraining)"
            : $"from scratch, preset `{options.Size.Name}`";
        Line($"A {PretrainedModelFolder.DisplayName(config.Family)} {(isEncoder ? "masked-language-model encoder" : "causal-language-model decoder")} (`{architecture}`), pretrained {origin} with MLNetTransformerExtensions.");
        Line($"");
        Line($"| | |");
        Line($"|---|---|");
        Line($"| Parameters | {model.parameters().Sum(p => p.numel()):N0} |");
        Line($"| Layers × hidden, heads, feed-forward | {config.NumLayers} × {config.HiddenSize}, {config.NumHeads}, {config.IntermediateSize} |");
        var vocabulary = trainedTokenizer ? $"{(isEncoder ? "WordPiece" : "byte-level BPE")} trained on the training text"
            : options.Tokenizer is { } tokenizer ? $"from `{tokenizer}`" : "the model's own";
        Line($"| Vocabulary | {config.VocabSize:N0} tokens, {vocabulary} |");
        Line($"| Objective | {(isEncoder ? FormattableString.Invariant($"masked LM: {options.MaskProbability:P0} of tokens predicted (80 % masked, 10 % random, 10 % kept)") : "causal LM: next-token prediction")} |");
        Line($"| Sequences | packed to {maxLength} tokens |");
        Line($"| Steps | {step:N0} ({epochs} epoch(s) begun), batch {options.BatchSize} |");
        Line($"| Optimiser | AdamW, peak learning rate {learningRate:0.#####}, weight decay {options.WeightDecay}, linear warm-up {options.WarmupRatio:P0} then linear decay, gradient clipping {options.MaxGradNorm}, seed {options.Seed} |");
        if (history.Count > 0)
        {
            var last = history[^1];
            var first = history.FirstOrDefault(p => p.Step == 0);
            var before = first is null || first == last ? string.Empty : FormattableString.Invariant($" (before training: {first.Loss:0.000}, perplexity {Math.Exp(first.Loss):0.0})");
            Line($"| Validation loss | {last.Loss:0.000} nats per predicted token, perplexity {Math.Exp(last.Loss):0.0}{before}, on {validationSequences} held-out sequences |");
        }

        Line($"");
        Line($"## Training text");
        Line($"");
        foreach (var input in inputs)
        {
            Line($"- `{Path.GetFileName(input.Path)}`: {input.Bytes:N0} bytes, SHA-256 `{input.Sha256}`");
        }

        Line($"");
        var held = options.ValidationFiles is null
            ? FormattableString.Invariant($"Validation: every {options.HoldOutEvery}th packed sequence of this text is held out and never trained on.")
            : $"Validation files: {string.Join(", ", validationInputs.Select(f => $"`{Path.GetFileName(f.Path)}`"))}.";
        Line($"{held}");
        Line($"");
        Line($"## Use");
        Line($"");
        Line($"HuggingFace: `{(isEncoder ? "AutoModelForMaskedLM" : "AutoModelForCausalLM")}.from_pretrained(folder)` and `AutoTokenizer.from_pretrained(folder)`; fine-tune with `AutoModelForSequenceClassification`.");
        Line($"MLNetTransformerExtensions: `HeadClassifier.FromPretrained(folder, ...)`, `PromptClassifier.FromPretrained(folder, ...)`, or `train --model <folder>` on the command line.");
        Line($"The `{PretrainingCheckpoint.FolderName}/` subfolder holds the optimiser state for resuming; it is not needed to use the model.");
        return text.ToString();
    }
}
