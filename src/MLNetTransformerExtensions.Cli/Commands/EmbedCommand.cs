using System.CommandLine;
using System.Globalization;
using System.Text;
using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Tokenization;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.Cli.Commands;

/// <summary>
/// <c>embed</c>: one JSON line per input record with its token ids and sentence embedding, read the way <c>logits</c>
/// reads its input. Everything is validated and embedded before anything is written, so stdout holds only result lines.
/// </summary>
internal static class EmbedCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = $"A built-in model ({string.Join(", ", Builtin.BuiltinModels.Names)}), a HuggingFace or sentence-transformers model folder, or a hub id.", Required = true };
        var input = new Option<FileInfo>("--input") { Description = "A .txt file (one text per line) or .jsonl file ({\"text\": ...} per line).", Required = true };
        var pooling = new Option<string?>("--pooling") { Description = "mean (over the real tokens), cls (the first token) or last (the last real token). Default: the model's (its sentence-transformers files; mean for encoders, last for decoders)." };
        pooling.AcceptOnlyFromAmong("mean", "cls", "last");
        var noNormalize = new Option<bool>("--no-normalize") { Description = "Keep the vectors' length instead of scaling them to unit length (the default when the model normalises)." };
        var maxLength = new Option<int?>("--max-length") { Description = "Truncate to this many tokens, special tokens included (default: the model's max_seq_length, else its maximum)." };
        var batchSize = new Option<int>("--batch-size") { Description = "Records per forward pass. The output does not depend on it.", DefaultValueFactory = _ => 16 };

        var command = new Command("embed", "Print token ids and sentence embeddings as JSON lines.")
        {
            model, input, pooling, noNormalize, maxLength, batchSize,
        };
        command.SetAction(parse => Run(
            parse.GetValue(model)!, parse.GetValue(input)!, parse.GetValue(pooling), parse.GetValue(noNormalize), parse.GetValue(maxLength), parse.GetValue(batchSize)));
        return command;
    }

    private static int Run(string modelPath, FileInfo input, string? pooling, bool noNormalize, int? maxLength, int batchSize)
    {
        try
        {
            if (batchSize < 1)
            {
                throw new CliException($"--batch-size must be at least 1 (got {batchSize}).");
            }

            var folder = ModelArgument.Resolve(modelPath);
            var longest = TransformerTokenizer.FromFolder(folder).ModelMaxLength;
            if (maxLength is { } limit && (limit < 2 || limit > longest))
            {
                throw new CliException($"--max-length {limit} is outside 2..{longest}, the longest input this model takes.");
            }

            var records = InputRecords.Read(input);
            foreach (var record in records.Where(r => r.TextPair is not null))
            {
                throw new CliException($"{input.Name}:{record.Line}: \"text_pair\" is set, but a sentence embedding is made of one text; put the pair in \"text\" or drop it.");
            }

            var mode = pooling switch
            {
                "mean" => EmbeddingPooling.Mean,
                "cls" => EmbeddingPooling.Cls,
                "last" => EmbeddingPooling.LastToken,
                _ => (EmbeddingPooling?)null,
            };
            using var encoder = SentenceEncoder.FromFolder(folder, mode, noNormalize ? false : null, maxLength);
            var texts = records.Select(r => r.Text).ToList();
            var vectors = encoder.Embed(texts, batchSize);

            var stdout = new StreamWriter(Console.OpenStandardOutput(), new UTF8Encoding(false)) { AutoFlush = false };
            for (var i = 0; i < texts.Count; i++)
            {
                stdout.Write(Line(encoder.Encode(texts[i]).InputIds, vectors[i]));
                stdout.Write('\n');
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

    private static string Line(int[] inputIds, float[] embedding)
    {
        var builder = new StringBuilder(32 + (inputIds.Length * 6) + (embedding.Length * 12));
        builder.Append("{\"input_ids\":[").AppendJoin(',', inputIds).Append("],\"embedding\":[");
        for (var i = 0; i < embedding.Length; i++)
        {
            if (i > 0)
            {
                builder.Append(',');
            }

            builder.Append(embedding[i].ToString("R", CultureInfo.InvariantCulture));
        }

        return builder.Append("]}").ToString();
    }
}
