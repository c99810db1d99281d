using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Tokenization;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Cli.Commands;

/// <summary>
/// <c>logits</c>: one JSON line per input record with its token ids, mask and logits — the classification head's, or
/// with <c>--head lm</c> the vocabulary logits at the scored position (the last real token of a decoder, the first mask
/// token of an encoder, the first decoder step of an encoder-decoder, whose records may also carry <c>targets</c>:
/// each is scored teacher forced). Everything is validated before anything is written, so stdout holds only result lines.
/// </summary>
internal static class LogitsCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "A HuggingFace model folder (config.json, weights, tokenizer files).", Required = true };
        var input = InputRecords.CreateOption();
        input.Description = "A .txt file (one text per line) or .jsonl file ({\"text\": ..., \"text_pair\": ..., \"targets\": [...]} per line; targets for encoder-decoders with --head lm).";
        var maxLength = new Option<int?>("--max-length") { Description = "Truncate to this many tokens, special tokens included (default: the model's maximum)." };
        var padding = new Option<string>("--padding") { Description = "Padding side of the batches: right or left. The output does not depend on it.", DefaultValueFactory = _ => "right" };
        padding.AcceptOnlyFromAmong("right", "left");
        var batchSize = new Option<int>("--batch-size") { Description = "Records per forward pass. The output does not depend on it.", DefaultValueFactory = _ => 16 };
        var head = new Option<string>("--head") { Description = "classification (the sequence-classification head) or lm (vocabulary logits at the scored position).", DefaultValueFactory = _ => "classification" };
        head.AcceptOnlyFromAmong("classification", "lm");

        var command = new Command("logits", "Print token ids and logits as JSON lines, for debugging a checkpoint and checking parity with HuggingFace.")
        {
            model, input, maxLength, padding, batchSize, head,
        };
        command.SetAction(parse => Run(
            parse.GetValue(model)!, parse.GetValue(input)!, parse.GetValue(maxLength), parse.GetValue(padding) == "left",
            parse.GetValue(batchSize), parse.GetValue(head) == "lm"));
        return command;
    }

    private static int Run(string modelPath, FileInfo input, int? maxLength, bool leftPadding, int batchSize, bool languageModelHead)
    {
        try
        {
            if (batchSize < 1)
            {
                throw new CliException($"--batch-size must be at least 1 (got {batchSize}).");
            }

            var folder = ModelArgument.Resolve(modelPath);
            var tokenizer = TransformerTokenizer.FromFolder(folder);
            var config = TransformerConfig.FromFolder(folder);
            var limit = maxLength ?? tokenizer.ModelMaxLength;
            if (limit < 1 || limit > tokenizer.ModelMaxLength)
            {
                throw new CliException($"--max-length {limit} is outside 1..{tokenizer.ModelMaxLength}, the longest input this model takes.");
            }

            var records = InputRecords.Read(input);
            var encoded = new List<EncodedText>(records.Count);
            var positions = new List<int>(records.Count);
            foreach (var record in records)
            {
                var e = tokenizer.Encode(record.Text, record.TextPair, limit);
                if (e.InputIds.Length == 0)
                {
                    throw new CliException($"{input.Name}:{record.Line}: the text has no tokens, so there is nothing to score.");
                }

                if (record.Targets is not null && !(languageModelHead && config.IsEncoderDecoder))
                {
                    throw new CliException($"{input.Name}:{record.Line}: \"targets\" are scored by an encoder-decoder's decoder (BART, T5) with --head lm; this is a {config.Family} model{(languageModelHead ? string.Empty : " without --head lm")}.");
                }

                var position = !languageModelHead || config.IsEncoderDecoder ? 0
                    : config.Family == ModelFamily.Gpt2 ? e.InputIds.Length - 1
                    : Array.IndexOf(e.InputIds, tokenizer.MaskTokenId ?? -1);
                if (position < 0)
                {
                    throw new CliException($"{input.Name}:{record.Line}: the text has no mask token '{tokenizer.MaskToken}' (after truncation to {limit} tokens), so the masked-LM head has no position to score.");
                }

                encoded.Add(e);
                positions.Add(position);
            }

            using var model = languageModelHead
                ? (TransformerModel)TransformerModels.LoadForLanguageModeling(folder, out var report)
                : TransformerModels.LoadForSequenceClassification(folder, out report);
            if (report is null || !report.IsComplete)
            {
                Console.Error.WriteLine(report?.ToString() ?? $"'{folder}' has no weights: the logits come from random weights.");
            }

            var stdout = new StreamWriter(Console.OpenStandardOutput(), new UTF8Encoding(false)) { AutoFlush = false };
            using var _ = no_grad();
            for (var start = 0; start < encoded.Count; start += batchSize)
            {
                using var scope = NewDisposeScope();
                var rows = encoded.GetRange(start, Math.Min(batchSize, encoded.Count - start));
                if (model is ConditionalGenerationModel generator)
                {
                    // Right padding whatever --padding says: the encoder's positions and masks expect it (BART, T5).
                    var batch = EncodedBatch.Pad(rows, tokenizer.PadTokenId);
                    long[] shape = [batch.BatchSize, batch.SequenceLength];
                    var mask = tensor(batch.AttentionMask, shape);
                    var encoder = generator.HiddenStates(tensor(batch.InputIds, shape), mask, null);
                    var decoderStart = full(rows.Count, 1, (long)(config.DecoderStartTokenId ?? tokenizer.PadTokenId), ScalarType.Int64);
                    var firstStep = generator.PredictTokens(generator.DecoderHiddenStates(decoderStart, encoder, mask))[.., 0];   // (B, V)
                    for (var r = 0; r < rows.Count; r++)
                    {
                        var targets = records[start + r].Targets is { } t ? Targets.Score(generator, tokenizer, encoder[r..(r + 1)], mask[r..(r + 1)], t) : null;
                        stdout.Write(Line(rows[r], firstStep[r].data<float>().ToArray(), targets));
                        stdout.Write('\n');
                    }

                    continue;
                }

                var logits = Forward(model, config, tokenizer, rows, positions.GetRange(start, rows.Count), leftPadding);
                for (var r = 0; r < rows.Count; r++)
                {
                    stdout.Write(Line(rows[r], logits[r].data<float>().ToArray()));
                    stdout.Write('\n');
                }
            }

            stdout.Flush();
            return 0;
        }
        catch (Exception e) when (e is CliException or IOException or InvalidDataException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }

    private static Tensor Forward(TransformerModel model, TransformerConfig config, TransformerTokenizer tokenizer, List<EncodedText> rows, List<int> positions, bool left)
    {
        var batch = EncodedBatch.Pad(rows, tokenizer.PadTokenId, left ? PaddingSide.Left : PaddingSide.Right);
        var offsets = positions.Select((p, r) => (long)(batch.FirstTokenColumn(r) + p)).ToArray();
        long[] shape = [batch.BatchSize, batch.SequenceLength];
        var idTensor = tensor(batch.InputIds, shape);
        var maskTensor = tensor(batch.AttentionMask, shape);
        var typeTensor = config.Family == ModelFamily.Bert ? tensor(batch.TokenTypeIds, shape) : null;
        if (model is SequenceClassificationModel classifier)
        {
            return classifier.forward(idTensor, maskTensor, typeTensor);
        }

        var languageModel = (LanguageModel)model;
        var hidden = languageModel.HiddenStates(idTensor, maskTensor, typeTensor);
        // (B, T, H) -> (B, H) at each row's scored position
        var scored = hidden[arange(rows.Count, dtype: ScalarType.Int64), tensor(offsets)];
        return languageModel.PredictTokens(scored);
    }

    private static string Line(EncodedText row, float[] logits, string? targets = null)
    {
        var builder = new StringBuilder(32 + logits.Length * 12);
        builder.Append("{\"input_ids\":[").AppendJoin(',', row.InputIds).Append("],\"attention_mask\":[");
        builder.AppendJoin(',', Enumerable.Repeat(1, row.InputIds.Length)).Append("],\"logits\":[");
        for (var i = 0; i < logits.Length; i++)
        {
            if (i > 0)
            {
                builder.Append(',');
            }

            builder.Append(logits[i].ToString("R", CultureInfo.InvariantCulture));
        }

        builder.Append(']');
        if (targets is not null)
        {
            builder.Append(",\"targets\":").Append(targets);
        }

        return builder.Append('}').ToString();
    }
}

/// <summary>
/// Teacher-forced scores of target texts under an encoder-decoder, as HuggingFace's <c>model(..., labels=...)</c> sees
/// them: the labels are the tokenized target (special tokens included), the decoder reads them shifted right.
/// </summary>
internal static class Targets
{
    /// <summary>One JSON object per target: <c>target</c>, <c>labels</c>, <c>token_log_softmax</c>, <c>sum</c>, <c>mean</c>.</summary>
    public static string Score(ConditionalGenerationModel model, TransformerTokenizer tokenizer, Tensor encoder, Tensor mask, IReadOnlyList<string> targets)
    {
        var result = new JsonArray();
        foreach (var target in targets)
        {
            var labels = tokenizer.Encode(target).InputIds;
            var ids = tensor(labels.Select(id => (long)id).ToArray(), [1, labels.Length]);
            var logSoftmax = model.PredictTokens(model.DecoderHiddenStates(model.ShiftRight(ids), encoder, mask)).to(ScalarType.Float32).log_softmax(-1);
            var picked = logSoftmax.gather(2, ids.unsqueeze(2)).squeeze(2)[0].data<float>().ToArray();
            var sum = picked.Sum(v => (double)v);
            result.Add(new JsonObject
            {
                ["target"] = target,
                ["labels"] = new JsonArray([.. labels.Select(id => JsonValue.Create(id))]),
                ["token_log_softmax"] = new JsonArray([.. picked.Select(v => JsonValue.Create(v))]),
                ["sum"] = sum,
                ["mean"] = sum / picked.Length,
            });
        }

        return result.ToJsonString();
    }
}

/// <summary>One record of a <c>.txt</c> or <c>.jsonl</c> input file; <c>targets</c> are target texts to score (encoder-decoders).</summary>
internal sealed record InputRecord(int Line, string Text, string? TextPair, IReadOnlyList<string>? Targets = null);

/// <summary>Reads the input files of <c>logits</c> (and other commands that take raw texts).</summary>
internal static class InputRecords
{
    /// <summary>The <c>--input</c> option of the commands that read raw texts.</summary>
    public static Option<FileInfo> CreateOption() =>
        new("--input") { Description = "A .txt file (one text per line) or .jsonl file ({\"text\": ..., \"text_pair\": ...} per line).", Required = true };

    public static List<InputRecord> Read(FileInfo file)
    {
        if (!file.Exists)
        {
            throw new CliException($"The input file '{file.FullName}' does not exist.");
        }

        var jsonl = file.Extension.Equals(".jsonl", StringComparison.OrdinalIgnoreCase);
        var records = new List<InputRecord>();
        var lineNumber = 0;
        foreach (var line in File.ReadLines(file.FullName))
        {
            lineNumber++;
            if (!jsonl)
            {
                records.Add(new InputRecord(lineNumber, line, null));
                continue;
            }

            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            try
            {
                using var document = JsonDocument.Parse(line);
                var root = document.RootElement;
                if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("text", out var text) || text.ValueKind != JsonValueKind.String)
                {
                    throw new CliException($"{file.Name}:{lineNumber}: expected an object with a string \"text\" (and optionally \"text_pair\").");
                }

                string? pair = null;
                if (root.TryGetProperty("text_pair", out var pairElement) && pairElement.ValueKind != JsonValueKind.Null)
                {
                    pair = pairElement.ValueKind == JsonValueKind.String ? pairElement.GetString()
                        : throw new CliException($"{file.Name}:{lineNumber}: \"text_pair\" must be a string or null.");
                }

                List<string>? targets = null;
                if (root.TryGetProperty("targets", out var targetsElement) && targetsElement.ValueKind != JsonValueKind.Null)
                {
                    targets = targetsElement.ValueKind == JsonValueKind.Array && targetsElement.EnumerateArray().All(t => t.ValueKind == JsonValueKind.String)
                        ? [.. targetsElement.EnumerateArray().Select(t => t.GetString()!)]
                        : throw new CliException($"{file.Name}:{lineNumber}: \"targets\" must be an array of strings.");
                }

                records.Add(new InputRecord(lineNumber, text.GetString()!, pair, targets));
            }
            catch (JsonException e)
            {
                throw new CliException($"{file.Name}:{lineNumber}: not valid JSON ({e.Message}).");
            }
        }

        return records;
    }
}

/// <summary>An error the CLI reports as one line on stderr with a non-zero exit.</summary>
internal sealed class CliException(string message) : Exception(message);
