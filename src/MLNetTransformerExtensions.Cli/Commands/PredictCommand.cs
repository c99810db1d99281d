using System.CommandLine;
using System.Globalization;
using System.Text;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNetTransformerExtensions.Cli.Commands;

/// <summary>
/// <c>predict</c>: every input row with its columns kept, plus <c>PredictedLabel</c> and one <c>Score.&lt;label&gt;</c>
/// column per class (its probability), in the model's label order; rows in input order, streamed batch by batch.
/// </summary>
internal static class PredictCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "A model file written by train, or a folder written by export (ONNX).", Required = true };
        var input = new Option<string>("--input") { Description = "A TSV or CSV file with a header row holding the model's text column(s).", Required = true };
        var output = new Option<string>("--output") { Description = "Where to write the predictions (same format as the input).", Required = true };
        var precision = PrecisionOption.Create("Score in fp32 or bf16 (bfloat16: faster on CPUs with bf16 instructions, probabilities within about 0.01). Default: as saved in the model (fp32 unless chosen when training).");
        var command = new Command("predict", "Classify every row of a TSV/CSV file with a saved model.") { model, input, output, precision };
        var chat = new ChatArguments();
        foreach (var option in chat.All)
        {
            command.Options.Add(option);
        }

        command.SetAction(parse => Run(parse.GetValue(model)!, parse.GetValue(input)!, parse.GetValue(output)!, parse.GetValue(precision), chat.Read(parse)));
        return command;
    }

    private static int Run(string modelPath, string inputPath, string outputPath, string? precision, ChatArguments.Values chat)
    {
        var temporary = Path.GetFullPath(outputPath) + $".{Environment.ProcessId}.tmp";
        try
        {
            var ml = new MLContext(seed: 1);
            var loaded = ModelZip.Load(ml, modelPath);
            ModelZip.UsePrecision(loaded, PrecisionOption.Parse(precision));
            using var chatClient = chat.Attach(loaded.Model, CancellationToken.None);
            // Columns the model saw in training but that prediction files need not have (the label) read as empty.
            var data = TabularData.Load(ml, inputPath, loaded.InputSchema.Select(c => c.Name));
            foreach (var (column, what) in loaded.TextColumns)
            {
                data.Require(column, $"the model's {what}");
            }

            var scored = loaded.Model.Transform(data.View);
            var labels = loaded.ClassNames;
            var inputColumns = data.Columns.Select(c => scored.Schema[c]).ToList();
            var predicted = scored.Schema["PredictedLabel"];
            var score = scored.Schema[loaded.ScoreColumn];
            using (var writer = new StreamWriter(temporary, false, new UTF8Encoding(false)))
            {
                var separator = data.Separator;
                writer.WriteLine(string.Join(separator, data.Columns.Append("PredictedLabel").Concat(labels.Select(l => "Score." + l)).Select(v => Field(v, separator))));
                using var cursor = scored.GetRowCursor([.. inputColumns, predicted, score]);
                var getters = inputColumns.Select(c => cursor.GetGetter<ReadOnlyMemory<char>>(c)).ToList();
                var predictedGetter = cursor.GetGetter<ReadOnlyMemory<char>>(predicted);
                var scoreGetter = cursor.GetGetter<VBuffer<float>>(score);
                ReadOnlyMemory<char> value = default;
                VBuffer<float> scores = default;
                var fields = new List<string>();
                while (cursor.MoveNext())
                {
                    fields.Clear();
                    foreach (var getter in getters)
                    {
                        getter(ref value);
                        fields.Add(Field(value.ToString(), separator));
                    }

                    predictedGetter(ref value);
                    fields.Add(Field(value.ToString(), separator));
                    scoreGetter(ref scores);
                    foreach (var p in scores.DenseValues())
                    {
                        fields.Add(p.ToString("R", CultureInfo.InvariantCulture));
                    }

                    writer.WriteLine(string.Join(separator, fields));
                }
            }

            File.Move(temporary, outputPath, overwrite: true);
            return 0;
        }
        catch (Exception e) when (e is CliException or IOException or InvalidDataException or ArgumentException or InvalidOperationException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
        finally
        {
            if (File.Exists(temporary))
            {
                File.Delete(temporary);
            }
        }
    }

    /// <summary>Quotes a CSV field when needed; TSV fields cannot hold tabs or newlines, so they are replaced by spaces.</summary>
    private static string Field(string value, char separator)
    {
        if (separator == '\t')
        {
            return value.Replace('\t', ' ').Replace('\n', ' ').Replace('\r', ' ');
        }

        return value.IndexOfAny([',', '"', '\n', '\r']) >= 0 ? "\"" + value.Replace("\"", "\"\"") + "\"" : value;
    }
}
