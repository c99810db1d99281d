using System.Collections.Concurrent;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.ML;
using MLNetTransformerExtensions.Experiments;
using Spectre.Console;

namespace MLNetTransformerExtensions.Cli.Commands;

/// <summary>
/// <c>experiment</c>: searches ML.NET's classic text pipelines and transformer classifiers within a time or trial
/// budget, shows a live leaderboard, saves the best pipeline, and reports its test metrics as <c>train</c> does.
/// </summary>
internal static class ExperimentCommand
{
    private sealed record Settings(
        string Data, string? Validation, int? Folds, string? Test, string LabelColumn, string TextColumn, string? SecondTextColumn,
        TimeSpan? Time, int? MaxTrials, TextClassificationMetric Metric, string MetricName, IReadOnlyList<string> Models, int Seed, string Output, bool Json);

    private static readonly Dictionary<string, TextClassificationMetric> s_metrics = new(StringComparer.Ordinal)
    {
        ["accuracy"] = TextClassificationMetric.MicroAccuracy,
        ["macro-accuracy"] = TextClassificationMetric.MacroAccuracy,
        ["macro-f1"] = TextClassificationMetric.MacroF1,
        ["log-loss"] = TextClassificationMetric.LogLoss,
        ["auc"] = TextClassificationMetric.AreaUnderRocCurve,
    };

    public static Command Create()
    {
        var data = new Option<string>("--data") { Description = "Training data: a TSV or CSV file with a header row.", Required = true };
        var validation = new Option<string?>("--validation") { Description = "Validation data that ranks the trials. Without it: --folds, or cross-validation below 1,000 rows, else a 20 % hold-out." };
        var folds = new Option<int?>("--folds") { Description = "Cross-validate every trial with K folds (instead of --validation)." };
        var test = new Option<string?>("--test") { Description = "Test data, scored once with the best model (the same numbers evaluate reports)." };
        var label = new Option<string>("--label-column") { Description = "The label column.", DefaultValueFactory = _ => "Label" };
        var text = new Option<string>("--text-column") { Description = "The text column.", DefaultValueFactory = _ => "Text" };
        var second = new Option<string?>("--second-text-column") { Description = "A second text column, for sentence pairs." };
        var time = new Option<string?>("--time") { Description = "Time budget, e.g. 10m, 90s, 1h30m (the trial in flight is cancelled when it runs out)." };
        var maxTrials = new Option<int?>("--max-trials") { Description = "The most trials to run. Alone (no --time), the same seed gives the same trials and best model." };
        var metric = new Option<string>("--metric") { Description = "The validation metric to optimise.", DefaultValueFactory = _ => "accuracy" };
        metric.AcceptOnlyFromAmong([.. s_metrics.Keys]);
        var models = new Option<string?>("--models") { Description = $"Comma-separated transformer models to try beside the classic pipelines: model folders, hub ids (owner/name[@revision]) or built-in models ({string.Join(", ", Builtin.BuiltinModels.Names)}). Default: {Builtin.BuiltinModels.DefaultName},{Builtin.BuiltinModels.DecoderName}." };
        var seed = new Option<int>("--seed") { Description = "Seed of the search, the splits and every trial.", DefaultValueFactory = _ => 1 };
        var output = new Option<string>("--output") { Description = "Where to write the best pipeline as an ML.NET model file (written at the end, atomically).", Required = true };
        var json = new Option<bool>("--json") { Description = "End stdout with one JSON line: best, trials and test metrics." };
        var command = new Command("experiment", "Search classic ML.NET text pipelines and transformer classifiers within a budget; save the best.")
        {
            data, validation, folds, test, label, text, second, time, maxTrials, metric, models, seed, output, json,
        };
        command.SetAction((parse, cancellation) =>
        {
            Settings settings;
            try
            {
                if (parse.GetValue(validation) is not null && parse.GetValue(folds) is not null)
                {
                    throw new CliException("Give --validation or --folds, not both.");
                }

                var metricName = parse.GetValue(metric)!;
                settings = new Settings(
                    parse.GetValue(data)!, parse.GetValue(validation), parse.GetValue(folds), parse.GetValue(test), parse.GetValue(label)!,
                    parse.GetValue(text)!, parse.GetValue(second), ParseDuration(parse.GetValue(time)), parse.GetValue(maxTrials),
                    s_metrics[metricName], metricName, ParseModels(parse.GetValue(models)), parse.GetValue(seed), parse.GetValue(output)!, parse.GetValue(json));
            }
            catch (CliException e)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                return Task.FromResult(1);
            }

            using var signals = new StopSignals(cancellation, "Stopping: the trial in flight is cancelled and the best finished one kept (Ctrl+C again quits at once).");
            return Task.FromResult(Run(settings, signals.Token));
        });
        return command;
    }

    /// <summary>Every <c>--models</c> entry is checked before anything is loaded or trained.</summary>
    private static List<string> ParseModels(string? value)
    {
        var models = value is null
            ? [Builtin.BuiltinModels.DefaultName, Builtin.BuiltinModels.DecoderName]
            : value.Split(',', StringSplitOptions.TrimEntries).ToList();
        foreach (var model in models)
        {
            try
            {
                ExperimentCandidates.CheckModelName(model);
            }
            catch (ArgumentException e)
            {
                throw new CliException($"--models: {e.Message}");
            }
        }

        return models;
    }

    /// <summary>Parses 10m, 90s, 1h30m, 2h, or a number of seconds.</summary>
    internal static TimeSpan? ParseDuration(string? value)
    {
        if (value is null)
        {
            return null;
        }

        var text = value.Trim().ToLowerInvariant();
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var plain) && plain > 0)
        {
            return TimeSpan.FromSeconds(plain);
        }

        var total = TimeSpan.Zero;
        var number = "";
        foreach (var c in text)
        {
            if (char.IsAsciiDigit(c) || c == '.')
            {
                number += c;
                continue;
            }

            if (number.Length == 0 || !double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var amount))
            {
                throw new CliException($"--time '{value}' is not a duration; write e.g. 10m, 90s or 1h30m.");
            }

            total += c switch
            {
                'h' => TimeSpan.FromHours(amount),
                'm' => TimeSpan.FromMinutes(amount),
                's' => TimeSpan.FromSeconds(amount),
                _ => throw new CliException($"--time '{value}' has the unit '{c}'; use h, m or s (e.g. 10m, 90s, 1h30m)."),
            };
            number = "";
        }

        if (number.Length > 0 || total <= TimeSpan.Zero)
        {
            throw new CliException($"--time '{value}' is not a positive duration; write e.g. 10m, 90s or 1h30m.");
        }

        return total;
    }

    private static int Run(Settings s, CancellationToken cancellation)
    {
        try
        {
            var ml = new MLContext(seed: s.Seed);
            var train = Load(ml, s.Data, s);
            var validation = s.Validation is null ? null : Load(ml, s.Validation, s);
            var test = s.Test is null ? null : Load(ml, s.Test, s);
            var labels = train.Read(ml, s.LabelColumn);
            TrainCommand.CheckTrainingLabels(train, s.LabelColumn, labels);
            var classNames = labels.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
            foreach (var other in new[] { validation, test })
            {
                if (other is not null)
                {
                    ModelZip.CheckLabels(ml, other, s.LabelColumn, classNames);
                }
            }

            // Models are resolved (downloaded when hub ids) before the clock starts and before anything trains.
            var candidates = new List<ExperimentCandidate>(ExperimentCandidates.Classic());
            foreach (var model in s.Models)
            {
                ModelArgument.Resolve(model);
                candidates.AddRange(ExperimentCandidates.ForModel(model, cancellationToken: cancellation));
            }

            var console = AnsiConsole.Console;
            if (Console.IsOutputRedirected)
            {
                // Logs and pipes get the whole leaderboard on one line per trial rather than 80 columns of wrapped cells.
                console.Profile.Width = 200;
            }

            console.MarkupLine(Markup.Escape(
                $"Experiment on {train.FileName}: {classNames.Count} classes, {candidates.Count} candidates ({string.Join(", ", candidates.Select(c => c.Name))}); " +
                $"optimising {s.MetricName}{(s.Time is { } t ? $" within {t:g}" : "")}{(s.MaxTrials is { } n ? $", at most {n} trials" : "")}."));
            var settings = new TextClassificationExperimentSettings
            {
                LabelColumnName = s.LabelColumn,
                TextColumnName = s.TextColumn,
                SecondTextColumnName = s.SecondTextColumn,
                LabelKeyColumnName = ModelZip.KeyColumn(s.LabelColumn),
                PredictedLabelKeyColumnName = ModelZip.PredictedKey,
                OptimizingMetric = s.Metric,
                MaxExperimentTime = s.Time,
                MaxTrials = s.MaxTrials,
                Candidates = candidates,
                Seed = s.Seed,
                NumberOfFolds = s.Folds,
                CancellationToken = cancellation,
            };
            var clock = Stopwatch.StartNew();
            var result = RunLive(console, ml, settings, train.View, validation?.View, s);
            var wall = clock.Elapsed.TotalSeconds;
            console.Write(Leaderboard(result.Trials, s.MetricName, s.Metric, $"Leaderboard ({result.Trials.Count} trials, {wall:0.0} s)"));
            console.MarkupLine(Markup.Escape(FormattableString.Invariant(
                $"Best: {result.BestTrial.Candidate} ({result.BestTrial.Hyperparameters}), validation {s.MetricName} {result.BestTrial.Metric:0.0000}; wall time {wall:0.0} s{(s.Time is { } limit ? $" of a {limit.TotalSeconds:0} s budget" : "")}.")));

            ModelZip.Save(ml, result.BestModel, train.View.Schema, s.Output);
            console.MarkupLine(Markup.Escape($"Best model written to {Path.GetFullPath(s.Output)}"));

            JsonNode? testJson = null;
            if (test is not null)
            {
                // Scored from the saved file, exactly as evaluate does in a fresh process.
                var saved = ModelZip.Load(new MLContext(seed: 1), s.Output);
                var report = ClassificationReport.Evaluate(ml, saved.Model.Transform(test.View), ModelZip.KeyColumn(saved.LabelColumn), saved.ClassNames, test.FileName);
                report.Render(console, $"Best model on {test.FileName}");
                testJson = new JsonObject { ["accuracy"] = report.Accuracy, ["macro_f1"] = report.MacroF1, ["log_loss"] = report.LogLoss, ["count"] = report.Count };
            }

            if (s.Json)
            {
                var json = new JsonObject
                {
                    ["best"] = new JsonObject
                    {
                        ["candidate"] = result.BestTrial.Candidate,
                        ["hyperparameters"] = Hyperparameters(result.BestTrial.Hyperparameters),
                        ["metric"] = result.BestTrial.Metric,
                    },
                    ["trials"] = new JsonArray([.. result.Trials.Select(t => (JsonNode)new JsonObject
                    {
                        ["candidate"] = t.Candidate,
                        ["hyperparameters"] = Hyperparameters(t.Hyperparameters),
                        ["metric"] = t.Metric,
                        ["seconds"] = Math.Round(t.Duration.TotalSeconds, 3),
                        ["status"] = t.Status.ToString().ToLowerInvariant(),
                        ["error"] = t.Error,
                    })]),
                    ["test"] = testJson,
                    ["metric_name"] = s.MetricName,
                    ["wall_seconds"] = Math.Round(wall, 1),
                };
                Console.Out.Flush();
                Console.WriteLine(json.ToJsonString());
            }

            return 0;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("error: the experiment was cancelled before any trial finished; no model file was written.");
            return 130;
        }
        catch (Exception e) when (e is CliException or IOException or InvalidDataException or ArgumentException or InvalidOperationException or NotSupportedException or Hub.HubException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }

    /// <summary>
    /// Runs the experiment on a worker thread while this thread redraws the leaderboard and the time left twice a
    /// second; trial events cross over through a queue, so only this thread touches the display.
    /// </summary>
    private static TextClassificationExperimentResult RunLive(IAnsiConsole console, MLContext ml, TextClassificationExperimentSettings settings,
        IDataView train, IDataView? validation, Settings s)
    {
        if (!console.Profile.Capabilities.Interactive)
        {
            // A log or a pipe: one line per trial event instead of a redrawn table.
            var started = Stopwatch.StartNew();
            settings.Progress = new LineProgress(trial => console.MarkupLine(Markup.Escape(Describe(trial, s, started.Elapsed))));
            return ml.CreateTextClassificationExperiment(settings).Execute(train, validation);
        }

        var events = new ConcurrentQueue<TrialResult>();
        settings.Progress = new QueueProgress(events);
        var trials = new List<TrialResult>();
        var clock = Stopwatch.StartNew();
        var table = Leaderboard(trials, s.MetricName, s.Metric, "Leaderboard");
        Task<TextClassificationExperimentResult> run = null!;
        console.Live(table).AutoClear(true).Start(context =>
        {
            run = Task.Run(() => ml.CreateTextClassificationExperiment(settings).Execute(train, validation));
            while (true)
            {
                var finished = run.Wait(TimeSpan.FromMilliseconds(500));
                var changed = false;
                while (events.TryDequeue(out var trial))
                {
                    var index = trials.FindIndex(t => t.TrialNumber == trial.TrialNumber);
                    if (index < 0)
                    {
                        trials.Add(trial);
                    }
                    else
                    {
                        trials[index] = trial;
                    }

                    changed = true;
                }

                var elapsed = clock.Elapsed;
                var running = trials.LastOrDefault(t => t.Status == TrialStatus.Running);
                var caption = FormattableString.Invariant($"{elapsed.TotalSeconds:0} s elapsed")
                    + (s.Time is { } limit ? FormattableString.Invariant($", {Math.Max(0, (limit - elapsed).TotalSeconds):0} s left") : "")
                    + (running is null ? "" : $"; running #{running.TrialNumber} {running.Candidate}");
                if (changed)
                {
                    context.UpdateTarget(table = Leaderboard(trials, s.MetricName, s.Metric, "Leaderboard"));
                }

                table.Caption(Markup.Escape(caption));
                context.Refresh();
                if (finished)
                {
                    break;
                }
            }
        });
        return run.GetAwaiter().GetResult();
    }

    /// <summary>Trials ranked: completed ones by the metric, then running, cancelled and failed ones in the order they ran.</summary>
    private static Table Leaderboard(IReadOnlyList<TrialResult> trials, string metricName, TextClassificationMetric metric, string title)
    {
        var table = new Table().Border(TableBorder.Rounded).Title(Markup.Escape(title))
            .AddColumn("Rank").AddColumn("#").AddColumn("Candidate").AddColumn("Hyperparameters").AddColumn("Data")
            .AddColumn(Markup.Escape(metricName)).AddColumn("Seconds").AddColumn("Scoring rows/s").AddColumn("Size MB").AddColumn("Peak MB").AddColumn("Status");
        var lower = TrialMetrics.LowerIsBetter(metric);
        var completed = trials.Where(t => t.Status == TrialStatus.Completed)
            .OrderBy(t => lower ? t.Metric : -t.Metric).ThenBy(t => t.TrialNumber).ToList();
        var rest = trials.Where(t => t.Status != TrialStatus.Completed).OrderBy(t => t.TrialNumber);
        string F(double? v, string format) => v is { } x ? x.ToString(format, CultureInfo.InvariantCulture) : "";
        var rank = 0;
        foreach (var t in completed.Concat(rest))
        {
            table.AddRow(
                t.Status == TrialStatus.Completed ? (++rank).ToString(CultureInfo.InvariantCulture) : "",
                t.TrialNumber.ToString(CultureInfo.InvariantCulture),
                Markup.Escape(t.Candidate),
                Markup.Escape(t.Hyperparameters.ToString()),
                F(t.DataFraction, "0.##"),
                F(t.Metric, "0.0000"),
                t.Status == TrialStatus.Running ? "" : F(t.Duration.TotalSeconds, "0.0"),
                F(t.ScoringRowsPerSecond, "0"),
                F(t.ModelSizeBytes / 1e6, "0.0"),
                t.PeakMemoryBytes > 0 ? F(t.PeakMemoryBytes / 1e6, "0") : "",
                Markup.Escape(t.Status.ToString().ToLowerInvariant() + (t.Error is null ? "" : $": {Shorten(t.Error)}")));
        }

        return table;
    }

    private static string Describe(TrialResult t, Settings s, TimeSpan elapsed)
    {
        var left = s.Time is { } limit ? FormattableString.Invariant($", {Math.Max(0, (limit - elapsed).TotalSeconds):0} s left") : "";
        var what = FormattableString.Invariant($"#{t.TrialNumber} {t.Candidate} ({t.Hyperparameters}, data {t.DataFraction:0.##})");
        return t.Status switch
        {
            TrialStatus.Running => $"[{elapsed.TotalSeconds:0} s{left}] started {what}",
            TrialStatus.Completed => FormattableString.Invariant($"[{elapsed.TotalSeconds:0} s{left}] completed {what}: {s.MetricName} {t.Metric:0.0000} in {t.Duration.TotalSeconds:0.0} s"),
            _ => FormattableString.Invariant($"[{elapsed.TotalSeconds:0} s{left}] {t.Status.ToString().ToLowerInvariant()} {what} after {t.Duration.TotalSeconds:0.0} s: {t.Error}"),
        };
    }

    private static string Shorten(string text) => text.Length <= 80 ? text : text[..77] + "...";

    private static JsonObject Hyperparameters(Hyperparameters values) =>
        new(values.Select(v => new KeyValuePair<string, JsonNode?>(v.Key, v.Value)));

    private static TabularData Load(MLContext ml, string path, Settings s) =>
        TabularData.LoadLabelled(ml, path, s.TextColumn, s.LabelColumn, s.SecondTextColumn);

    private sealed class LineProgress(Action<TrialResult> write) : IProgress<TrialResult>
    {
        public void Report(TrialResult value) => write(value);
    }

    private sealed class QueueProgress(ConcurrentQueue<TrialResult> queue) : IProgress<TrialResult>
    {
        public void Report(TrialResult value) => queue.Enqueue(value);
    }
}
