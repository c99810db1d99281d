using System.CommandLine;
using System.Text;
using System.Text.Json;
using Microsoft.ML;
using MLNetTransformerExtensions.MLNet;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.Cli.Commands;

/// <summary>
/// <c>explain</c>: one JSON line per input record with the tokens the model read, each token's attribution to a class's
/// score, the predicted class and the explained one. Input and errors as <c>logits</c>: everything is validated before
/// anything is written, so stdout holds only result lines.
/// </summary>
internal static class ExplainCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "A model file written by train.", Required = true };
        var input = InputRecords.CreateOption();
        var label = new Option<string?>("--class") { Description = "The class whose score is explained (default: each text's predicted class)." };
        var method = new Option<string>("--method") { Description = "ig (integrated gradients on the word embeddings) or grad-input (gradient × input: one backward pass, noisier).", DefaultValueFactory = _ => "ig" };
        method.AcceptOnlyFromAmong("ig", "grad-input");
        var steps = new Option<int>("--steps") { Description = "Integration steps of ig; more shrink completeness_error (the attributions' sum minus the score's change from the baseline).", DefaultValueFactory = _ => TokenAttributionOptions.Defaults.Steps };

        var command = new Command("explain", "Print each token's attribution to a class's score as JSON lines: which words pushed the prediction.")
        {
            model, input, label, method, steps,
        };
        command.SetAction(parse => Run(parse.GetValue(model)!, parse.GetValue(input)!, parse.GetValue(label), parse.GetValue(method) == "grad-input", parse.GetValue(steps)));
        return command;
    }

    private static int Run(string modelPath, FileInfo input, string? label, bool gradientTimesInput, int steps)
    {
        try
        {
            if (steps < 1)
            {
                throw new CliException($"--steps must be at least 1 (got {steps}).");
            }

            var ml = new MLContext(seed: 1);
            var loaded = ModelZip.Load(ml, modelPath);
            var classifier = loaded.Classifier
                ?? throw new CliException($"'{modelPath}' holds a classic ML.NET pipeline, whose scores cannot be attributed to tokens; explain a transformer model written by train.");
            if (label is not null && !loaded.ClassNames.Contains(label))
            {
                throw new CliException($"--class '{label}' is not a class of this model; its classes are {string.Join(", ", loaded.ClassNames.Select(c => $"'{c}'"))}.");
            }

            var records = InputRecords.Read(input);
            var pairs = classifier.SecondTextColumnName is not null;
            foreach (var record in records)
            {
                if (pairs != (record.TextPair is not null))
                {
                    throw new CliException(pairs
                        ? $"{input.Name}:{record.Line}: the model classifies text pairs; give each record a \"text_pair\" (in a .jsonl file)."
                        : $"{input.Name}:{record.Line}: the model classifies single texts, but the record has a \"text_pair\".");
                }
            }

            var options = new TokenAttributionOptions
            {
                Method = gradientTimesInput ? AttributionMethod.GradientTimesInput : AttributionMethod.IntegratedGradients,
                Steps = steps,
                Label = label,
            };
            var stdout = new StreamWriter(Console.OpenStandardOutput(), new UTF8Encoding(false)) { AutoFlush = false };
            foreach (var record in records)
            {
                var why = classifier.Explain([record.Text], pairs ? [record.TextPair!] : null, options)[0];
                stdout.Write(Line(why));
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

    private static string Line(TokenAttribution why)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteStartArray("tokens");
            foreach (var token in why.Tokens)
            {
                json.WriteStringValue(token);
            }

            json.WriteEndArray();
            json.WriteStartArray("attributions");
            foreach (var a in why.Attributions)
            {
                json.WriteNumberValue(a);
            }

            json.WriteEndArray();
            json.WriteString("predicted", why.PredictedLabel);
            json.WriteString("class", why.Label);
            json.WriteString("method", why.Method == AttributionMethod.IntegratedGradients ? "ig" : "grad-input");
            json.WriteNumber("steps", why.Steps);
            json.WriteNumber("score", why.Score);
            json.WriteNumber("baseline_score", why.BaselineScore);
            if (why.CompletenessError is double error)
            {
                json.WriteNumber("completeness_error", error);
            }
            else
            {
                json.WriteNull("completeness_error");
            }

            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }
}
