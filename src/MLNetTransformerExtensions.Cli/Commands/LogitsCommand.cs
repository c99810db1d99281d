using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Tokenization;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Cli.Commands;

/// <summary>
/// <c>logits</c>: one JSON line per input record with its token ids, mask and logits — the classification head's, or
/// with <c>--head lm</c> the vocabulary logits at the scored position (the last real token of a decoder, the first mask
/// token of an encoder). Everything is validated before anything is written, so stdout holds only result lines.
/// </summary>
internal static class LogitsCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "A HuggingFace model folder (config.json, weights, tokenizer files).", Required = true };
        var input = InputRecords.CreateOption();
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

                var position = !languageModelHead ? 0
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

    private static string Line(EncodedText row, float[] logits)
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

        return builder.Append("]}").ToString();
    }
}

/// <summary>One record of a <c>.txt</c> or <c>.jsonl</c> input file.</summary>
internal sealed record InputRecord(int Line, string Text, string? TextPair);

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

                records.Add(new InputRecord(lineNumber, text.GetString()!, pair));
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
