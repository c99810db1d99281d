using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using MLNetTransformerExtensions.MLNet;
using Spectre.Console;

namespace MLNetTransformerExtensions.Cli.Commands;

/// <summary><c>evaluate</c>: metrics of a saved model on a labelled TSV/CSV file, the same numbers <c>train</c> reported.</summary>
internal static class EvaluateCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "A model file written by train, or a folder written by export (ONNX).", Required = true };
        var data = new Option<string>("--data") { Description = "Labelled data: a TSV or CSV file with a header row and the training columns.", Required = true };
        var json = new Option<bool>("--json") { Description = "End stdout with one JSON line of the metrics." };
        var htmlReport = HtmlReportOption.Create();
        var precision = PrecisionOption.Create("Score in fp32 or bf16 (bfloat16: faster on CPUs with bf16 instructions, probabilities within about 0.01). Default: as saved in the model (fp32 unless chosen when training).");
        var command = new Command("evaluate", "Evaluate a saved model on labelled data: accuracy, macro-F1, log-loss, per-class precision and recall, confusion matrix.")
        {
            model, data, json, precision, htmlReport,
        };
        var chat = new ChatArguments();
        foreach (var option in chat.All)
        {
            command.Options.Add(option);
        }

        command.SetAction(parse => Run(parse.GetValue(model)!, parse.GetValue(data)!, parse.GetValue(json), parse.GetValue(precision), chat.Read(parse), parse.GetValue(htmlReport)));
        return command;
    }

    private static int Run(string modelPath, string dataPath, bool json, string? precision, ChatArguments.Values chat, string? htmlPath)
    {
        try
        {
            var ml = new MLContext(seed: 1);
            var loaded = ModelZip.Load(ml, modelPath);
            ModelZip.UsePrecision(loaded, PrecisionOption.Parse(precision));
            using var chatClient = chat.Attach(loaded.Model, CancellationToken.None);
            var data = TabularData.Load(ml, dataPath);
            data.Require(loaded.LabelColumn, "the model's label column");
            foreach (var (column, what) in loaded.TextColumns)
            {
                data.Require(column, $"the model's {what}");
            }

            ModelZip.CheckLabels(ml, data, loaded.LabelColumn, loaded.ClassNames);
            // Scoring is lazy: the evaluator's pass over the rows is where the model runs.
            var clock = Stopwatch.StartNew();
            var report = ClassificationReport.Evaluate(ml, loaded.Model.Transform(data.View), ModelZip.KeyColumn(loaded.LabelColumn), loaded.ClassNames, data.FileName);
            var seconds = clock.Elapsed.TotalSeconds;
            var used = PrecisionOption.Name(loaded.Precision);
            report.Render(AnsiConsole.Console, $"{Path.GetFileName(modelPath)} on {data.FileName}");
            AnsiConsole.MarkupLine(Markup.Escape(string.Create(CultureInfo.InvariantCulture, $"Scored {report.Count} rows in {seconds:F2} s ({report.Count / seconds:F1} rows/s) in {used}.")));
            var usage = chatClient is null ? null : loaded.Model.GetChatUsage();
            if (usage is not null)
            {
                ChatArguments.Render(AnsiConsole.Console, usage, seconds);
            }

            if (htmlPath is not null)
            {
                var html = new MLNet.TrainingReport($"{Path.GetFileName(modelPath)} on {data.FileName}");
                HtmlReportOption.AddEvaluation(html, Path.GetFileName(modelPath), ml, loaded, data, loaded.Model.Transform(data.View));
                html.Save(htmlPath);
                AnsiConsole.MarkupLine(Markup.Escape($"Report written to {Path.GetFullPath(htmlPath)}"));
            }

            if (json)
            {
                var result = report.ToJson();
                result["model"] = Path.GetFullPath(modelPath);
                result["evaluated_on"] = data.Path;
                result["precision"] = used;
                result["scoring_seconds"] = Math.Round(seconds, 3);
                result["rows_per_second"] = Math.Round(report.Count / seconds, 1);
                if (usage is not null)
                {
                    ChatArguments.AddUsage(result, usage, seconds);
                }

                Console.WriteLine(result.ToJsonString());
            }

            return 0;
        }
        catch (Exception e) when (e is CliException or IOException or InvalidDataException or ArgumentException or InvalidOperationException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }
}
