using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML;
using MLNetTransformerExtensions.Benchmarks;
using MLNetTransformerExtensions.MLNet;
using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Runtime;
using Spectre.Console;

namespace MLNetTransformerExtensions.Cli.Commands;

/// <summary>
/// <c>bench soak</c>: fits a classifier on a TSV/CSV file, streams many rows through the fitted pipeline, then scores
/// single rows from several threads with pooled prediction engines for some minutes, sampling resident memory, open
/// handles, the managed heap and live tensors. A line per sample to stderr, the trends to stdout, the curve with
/// <c>--json</c>. A benchmark, not a test: run it on an idle machine for figures to quote.
/// </summary>
internal static class SoakBenchCommand
{
    public static Command Create()
    {
        var data = new Option<FileInfo>("--data") { Description = "Training data (a TSV or CSV file with a header row); its texts are also what the soak scores.", Required = true };
        var text = new Option<string>("--text-column") { Description = "The text column.", DefaultValueFactory = _ => "Text" };
        var label = new Option<string>("--label-column") { Description = "The label column.", DefaultValueFactory = _ => "Label" };
        var model = new Option<string>("--model") { Description = $"A model folder, hub id or built-in model (default {Builtin.BuiltinModels.DefaultName}).", DefaultValueFactory = _ => Builtin.BuiltinModels.DefaultName };
        var epochs = new Option<int>("--epochs") { Description = "Passes over the training data before the soak.", DefaultValueFactory = _ => 1 };
        var maxLength = new Option<int>("--max-length") { Description = "Longest input in tokens.", DefaultValueFactory = _ => 128 };
        var rows = new Option<long>("--rows") { Description = "Rows streamed through Transform (the texts, cycled).", DefaultValueFactory = _ => 1_000_000 };
        var minutes = new Option<double>("--minutes") { Description = "How long the threads score single rows.", DefaultValueFactory = _ => 10 };
        var threads = new Option<int>("--threads") { Description = "Threads scoring with pooled prediction engines.", DefaultValueFactory = _ => 8 };
        var sampleSeconds = new Option<double>("--sample-seconds") { Description = "Seconds between two samples while the threads score.", DefaultValueFactory = _ => 10 };
        var json = new Option<FileInfo?>("--json") { Description = "Also write every sample and the trends to this JSON file." };

        var command = new Command("soak", "Stream rows through a fitted pipeline, then score from several threads with pooled prediction engines, sampling memory, handles and live tensors.")
        {
            data, text, label, model, epochs, maxLength, rows, minutes, threads, sampleSeconds, json,
        };
        command.SetAction((parse, cancellation) => Task.FromResult(Run(parse.GetValue(data)!, parse.GetValue(text)!, parse.GetValue(label)!, parse.GetValue(model)!,
            parse.GetValue(epochs), parse.GetValue(maxLength), parse.GetValue(json), new SoakOptions
            {
                StreamRows = parse.GetValue(rows),
                StreamSampleEvery = (int)Math.Clamp(parse.GetValue(rows) / 50, 1, int.MaxValue), // 50 samples along the stream
                Threads = parse.GetValue(threads),
                Duration = TimeSpan.FromMinutes(parse.GetValue(minutes)),
                SampleInterval = TimeSpan.FromSeconds(parse.GetValue(sampleSeconds)),
            }, cancellation)));
        return command;
    }

    private static int Run(FileInfo dataFile, string textColumn, string labelColumn, string modelName, int epochs, int maxLength, FileInfo? json,
        SoakOptions options, CancellationToken cancellation)
    {
        try
        {
            options.Validate();
            var runtime = TorchRuntime.EnsureInitialized();
            var stderr = Console.Error;
            var ml = new MLContext(seed: 1);
            var data = TabularData.LoadLabelled(ml, dataFile.FullName, textColumn, labelColumn, null);
            var texts = data.Read(ml, textColumn);
            var labels = data.Read(ml, labelColumn);
            var folder = ModelArgument.Resolve(modelName);
            var decoder = TransformerConfig.FromFolder(folder).Family == ModelFamily.Gpt2;
            TransformerClassifierOptions classifier = decoder ? new DecoderClassifierOptions() : new EncoderClassifierOptions();
            classifier.ModelPath = folder;
            classifier.NumberOfEpochs = epochs;
            classifier.MaximumLength = maxLength;

            stderr.WriteLine($"bench soak: fitting {modelName} on {data.FileName} ({texts.Count} rows, {epochs} epoch(s))...");
            var model = SoakBenchmark.Fit(ml, [.. texts.Zip(labels, (t, l) => new SoakRow { Text = t, Label = l })], classifier, decoder);
            stderr.WriteLine(F($"bench soak: {options.StreamRows:N0} rows through Transform, then {options.Threads} threads for {options.Duration.TotalMinutes:0.#} min"));
            stderr.WriteLine("phase      rows        seconds  RSS MiB  managed MiB  handles  live tensors");
            var progress = new SynchronousProgress<SoakSample>(s => stderr.WriteLine(
                F($"{s.Phase,-9} {s.Rows,11:N0} {s.Seconds,9:F1} {s.ResidentMegabytes,8:F1} {s.ManagedMegabytes,12:F1} {s.OpenHandles,8} {s.LiveTensors,13}")));
            var result = SoakBenchmark.Run(ml, model, texts, options, progress, cancellation);
            (model as IDisposable)?.Dispose();

            var table = new Table().Border(TableBorder.Rounded)
                .Title(Markup.Escape(F($"Soak: {result.StreamedRows:N0} rows streamed, {result.ScoredRows:N0} rows scored by {result.Threads} threads (second half of each phase)")))
                .AddColumn("Phase").AddColumn("Counter").AddColumn(new TableColumn("First").RightAligned()).AddColumn(new TableColumn("Last").RightAligned())
                .AddColumn(new TableColumn("Max").RightAligned()).AddColumn(new TableColumn("Slope per minute").RightAligned());
            var trends = new JsonObject();
            foreach (var phase in new[] { SoakPhase.Streaming, SoakPhase.Scoring })
            {
                var phaseTrends = new JsonObject();
                foreach (var (name, counter) in Counters)
                {
                    if (result.Trend(phase, counter) is { } trend)
                    {
                        table.AddRow(phase.ToString(), name, F($"{trend.First:F1}"), F($"{trend.Last:F1}"), F($"{trend.Max:F1}"), F($"{trend.SlopePerMinute:+0.00;-0.00;0}"));
                        phaseTrends[name] = new JsonObject { ["first"] = trend.First, ["last"] = trend.Last, ["max"] = trend.Max, ["slope_per_minute"] = trend.SlopePerMinute };
                    }
                }

                trends[phase.ToString().ToLowerInvariant()] = phaseTrends;
            }

            AnsiConsole.Write(table);
            if (json is not null)
            {
                json.Directory?.Create();
                var document = new JsonObject
                {
                    ["model"] = modelName,
                    ["streamed_rows"] = result.StreamedRows,
                    ["scored_rows"] = result.ScoredRows,
                    ["threads"] = result.Threads,
                    ["trends"] = trends,
                    ["samples"] = new JsonArray([.. result.Samples.Select(s => (JsonNode)new JsonObject
                    {
                        ["phase"] = s.Phase.ToString().ToLowerInvariant(),
                        ["rows"] = s.Rows,
                        ["seconds"] = s.Seconds,
                        ["rss_mib"] = s.ResidentMegabytes,
                        ["managed_mib"] = s.ManagedMegabytes,
                        ["open_handles"] = s.OpenHandles,
                        ["live_tensors"] = s.LiveTensors,
                    })]),
                };
                BenchEnvironment.AddTo(document, runtime);
                File.WriteAllText(json.FullName, document.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
                stderr.WriteLine($"Wrote {json.FullName}");
            }

            return 0;
        }
        catch (Exception e) when (e is CliException or IOException or InvalidDataException or UnauthorizedAccessException or ArgumentException or InvalidOperationException or NotSupportedException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }

    private static readonly (string Name, Func<SoakSample, double> Counter)[] Counters =
    [
        ("RSS MiB", s => s.ResidentMegabytes),
        ("managed MiB", s => s.ManagedMegabytes),
        ("open handles", s => s.OpenHandles),
        ("live tensors", s => s.LiveTensors),
    ];

    private static string F(FormattableString value) => value.ToString(CultureInfo.InvariantCulture);

    private sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
