using System.CommandLine;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML;
using MLNetTransformerExtensions.Benchmarks;
using MLNetTransformerExtensions.MLNet;
using MLNetTransformerExtensions.Runtime;
using MLNetTransformerExtensions.Training;
using Spectre.Console;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Cli.Commands;

/// <summary>
/// <c>bench pipeline</c>: a transformer classifier end to end through ML.NET (LoadFromTextFile → MapValueToKey →
/// Encoder/DecoderClassifier → MapKeyToValue): Fit, Transform + Evaluate on the test file, then a stream of many rows
/// scored through the fitted pipeline while memory is sampled. For each phase: rows per second, the time inside the
/// network, and where the rest went. A table to stdout, a JSON file with <c>--json</c>; progress to stderr.
/// </summary>
internal static class PipelineBenchCommand
{
    private const double NoisyContentionPercent = 5;

    /// <summary>
    /// ML.NET's own TorchSharp TextClassification (NAS-BERT, 4.5 M parameters) on SST-2 sentences at batch 32, as the
    /// project's issue measured it: the figures the nasbert-size preset is compared against.
    /// </summary>
    private static class Reference
    {
        public const double TrainingRowsPerSecond = 212;
        public const double ScoringRowsPerSecondLow = 212;
        public const double ScoringRowsPerSecondHigh = 252;
        public const double BatchedRowsPerSecond = 510;
        public const double PeakResidentMegabytes = 800;
    }

    public static Command Create()
    {
        var data = new Option<FileInfo>("--data") { Description = "Training data: a TSV or CSV file with a header row.", Required = true };
        var test = new Option<FileInfo>("--test") { Description = "Test data, scored and evaluated after training; with the training data, the texts the stream cycles through.", Required = true };
        var text = new Option<string>("--text-column") { Description = "The text column.", DefaultValueFactory = _ => "Text" };
        var label = new Option<string>("--label-column") { Description = "The label column.", DefaultValueFactory = _ => "Label" };
        var model = new Option<string>("--model") { Description = $"A preset ({string.Join(", ", ModelBenchmark.PresetNames)}: random weights, a vocabulary trained on --data), or a model folder, hub id or built-in model.", DefaultValueFactory = _ => "nasbert-size" };
        var epochs = new Option<int>("--epochs") { Description = "Passes over the training data.", DefaultValueFactory = _ => 1 };
        var batchSize = new Option<int>("--batch-size") { Description = "Rows per training step and per scoring call.", DefaultValueFactory = _ => 32 };
        var maxLength = new Option<int>("--max-length") { Description = "Longest input in tokens.", DefaultValueFactory = _ => 128 };
        var learningRate = new Option<double>("--learning-rate") { Description = "Peak learning rate of AdamW.", DefaultValueFactory = _ => 5e-5 };
        var streamRows = new Option<long>("--stream-rows") { Description = "Rows scored by the streaming phase (the test then training texts, cycled; never held in memory).", DefaultValueFactory = _ => 100_000 };
        var sampleEvery = new Option<int>("--sample-every") { Description = "Rows between two memory samples of the stream.", DefaultValueFactory = _ => 1_000 };
        var threads = new Option<int?>("--threads") { Description = "libtorch threads (default: the machine's logical cores)." };
        var seed = new Option<int>("--seed") { Description = "Seed of weights, shuffling and dropout.", DefaultValueFactory = _ => 1 };
        var json = new Option<FileInfo?>("--json") { Description = "Also write the results, with the memory curve, to this JSON file." };
        var strategy = new Option<string>("--strategy") { Description = "head (a classification head) or prompt (label words scored by the language-model head; the model needs one).", DefaultValueFactory = _ => "head" };
        strategy.AcceptOnlyFromAmong("head", "prompt");
        var precision = PrecisionOption.Create("Number format of scoring and streaming: fp32 (default) or bf16, set on the fitted model. Training is always fp32.");

        var command = new Command("pipeline", "Measure training, scoring and streaming through the ML.NET pipeline end to end: rows per second, the share of time outside the model, memory.")
        {
            data, test, text, label, model, epochs, batchSize, maxLength, learningRate, streamRows, sampleEvery, threads, seed, json, strategy, precision,
        };
        command.SetAction(parse => Run(new Settings(
            parse.GetValue(data)!, parse.GetValue(test)!, parse.GetValue(text)!, parse.GetValue(label)!, parse.GetValue(model)!,
            parse.GetValue(epochs), parse.GetValue(batchSize), parse.GetValue(maxLength), parse.GetValue(learningRate),
            parse.GetValue(streamRows), parse.GetValue(sampleEvery), parse.GetValue(threads) ?? Environment.ProcessorCount, parse.GetValue(seed),
            parse.GetValue(json), parse.GetValue(strategy) == "prompt" ? ClassificationStrategy.Prompt : ClassificationStrategy.Head,
            PrecisionOption.Parse(parse.GetValue(precision)) ?? InferencePrecision.Float32)));
        return command;
    }

    private sealed record Settings(
        FileInfo Data, FileInfo Test, string TextColumn, string LabelColumn, string Model, int Epochs, int BatchSize, int MaxLength,
        double LearningRate, long StreamRows, int SampleEvery, int Threads, int Seed, FileInfo? Json, ClassificationStrategy Strategy, InferencePrecision Precision);

    private static int Run(Settings s)
    {
        string? presetFolder = null;
        try
        {
            Check(s.Threads >= 1, $"--threads must be at least 1 (got {s.Threads}).");
            var runtime = TorchRuntime.EnsureInitialized();
            set_num_threads(s.Threads);
            var stderr = Console.Error;

            // The same loading path as the train command: every column as text, through ML.NET's text loader.
            var ml = new MLContext(seed: s.Seed);
            var train = Load(ml, s.Data.FullName, s);
            var test = Load(ml, s.Test.FullName, s);

            string modelPath;
            int? tokenizerVocabulary = null;
            var preset = ModelBenchmark.Preset(s.Model) is not null;
            if (preset)
            {
                presetFolder = Path.Combine(Path.GetTempPath(), "mlnet-transformers-bench", $"{s.Model}-{Environment.ProcessId}");
                stderr.WriteLine($"bench pipeline: {s.Model} preset, random weights, vocabulary trained on {train.FileName}...");
                tokenizerVocabulary = PipelineBenchmark.CreatePresetFolder(s.Model, train.Read(ml, s.TextColumn), presetFolder);
                modelPath = presetFolder;
            }
            else
            {
                modelPath = ModelArgument.Resolve(s.Model);
            }

            var options = new PipelineBenchmarkOptions
            {
                ModelPath = modelPath,
                TextColumnName = s.TextColumn,
                LabelColumnName = s.LabelColumn,
                Epochs = s.Epochs,
                BatchSize = s.BatchSize,
                MaxLength = s.MaxLength,
                LearningRate = s.LearningRate,
                StreamRows = s.StreamRows,
                SampleEvery = s.SampleEvery,
                Seed = s.Seed,
                Strategy = s.Strategy,
                Precision = s.Precision,
            };
            options.Validate();
            stderr.WriteLine($"bench pipeline {s.Model}: batch {s.BatchSize}, max length {s.MaxLength}, {get_num_threads()} threads, {StrategyName(s.Strategy)}, {PrecisionOption.Name(s.Precision)} scoring");
            var result = PipelineBenchmark.Run(train.View, test.View, options, new Progress(line => stderr.WriteLine("  " + line)));

            var report = new Report(s, result, preset, tokenizerVocabulary);
            AnsiConsole.Write(report.Table());
            AnsiConsole.WriteLine(report.MemorySummary());
            var contention = new[] { result.Training, result.Scoring, result.Streaming }.Max(p => p.OtherCpuPercent ?? 0);
            if (contention > NoisyContentionPercent)
            {
                stderr.WriteLine(FormattableString.Invariant($"warning: other processes took up to {contention:F0} % of the machine's CPU time during a phase, so these timings understate what this machine can do; rerun when it is idle."));
            }

            if (s.Json is not null)
            {
                s.Json.Directory?.Create();
                var document = report.Json();
                BenchEnvironment.AddTo(document, runtime);
                File.WriteAllText(s.Json.FullName, document.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) + "\n");
                stderr.WriteLine($"Wrote {s.Json.FullName}");
            }

            return 0;
        }
        catch (Exception e) when (e is CliException or IOException or InvalidDataException or UnauthorizedAccessException or ArgumentException or InvalidOperationException or NotSupportedException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
        finally
        {
            if (presetFolder is not null && Directory.Exists(presetFolder))
            {
                Directory.Delete(presetFolder, recursive: true);
            }
        }
    }

    private static TabularData Load(MLContext ml, string path, Settings s)
    {
        var data = TabularData.Load(ml, path);
        data.Require(s.TextColumn, "--text-column");
        data.Require(s.LabelColumn, "--label-column");
        return data;
    }

    private static string StrategyName(ClassificationStrategy strategy) => strategy == ClassificationStrategy.Prompt ? "prompt" : "head";

    private static void Check(bool ok, string message)
    {
        if (!ok)
        {
            throw new CliException(message);
        }
    }

    /// <summary>Writes progress lines as they come (System.Progress would post them to the thread pool, out of order).</summary>
    private sealed class Progress(Action<string> write) : IProgress<string>
    {
        public void Report(string value) => write(value);
    }

    /// <summary>One run's results and how they are shown: a table, a memory summary and the JSON file.</summary>
    private sealed record Report(Settings Settings, PipelineBenchmarkResult Result, bool Preset, int? TokenizerVocabulary)
    {
        private PipelinePhase[] Phases => [Result.Training, Result.Scoring, Result.Streaming];

        public Table Table()
        {
            var config = Result.Config;
            var table = new Table().Border(TableBorder.Rounded)
                .Title(Markup.Escape(F($"{Settings.Model}: {config.Family}, {config.NumLayers} layers, hidden {config.HiddenSize}, {Result.Parameters / 1e6:F2} M parameters; {get_num_threads()} threads; {StrategyName(Settings.Strategy)}; {PrecisionOption.Name(Result.Precision)} scoring")))
                .AddColumn("Measure");
            foreach (var phase in Phases)
            {
                table.AddColumn(new TableColumn(phase.Name).RightAligned());
            }

            void Row(string name, Func<PipelinePhase, string> value) => table.AddRow([Markup.Escape(name), .. Phases.Select(p => Markup.Escape(value(p)))]);
            string Stage(PipelinePhase p, double seconds) => F($"{seconds:F2} s ({Share(seconds, p.Seconds):P1})");

            Row("rows", p => F($"{p.Rows:N0}"));
            Row("wall time", p => F($"{p.Seconds:F2} s"));
            Row("rows/s", p => F($"{p.RowsPerSecond:F1}"));
            Row("inside the model", p => Stage(p, p.ModelSeconds));
            Row("  forward", p => Stage(p, p.ForwardSeconds));
            Row("  backward", p => Stage(p, p.BackwardSeconds));
            Row("  optimizer step", p => Stage(p, p.OptimizerStepSeconds));
            Row("outside the model", p => F($"{p.OutsideSeconds:F2} s ({p.OutsideShare:P1})"));
            Row("  reading rows", p => Stage(p, p.ReadRowsSeconds));
            Row("  model setup", p => Stage(p, p.SetupSeconds));
            Row("  tokenizing", p => Stage(p, p.TokenizeSeconds));
            Row("  batching, padding", p => Stage(p, p.BatchSeconds));
            Row("  other (ML.NET, evaluation, columns)", p => Stage(p, p.OtherSeconds));
            Row("padding share", p => F($"{p.PaddingShare:P1}"));
            Row("RSS at start / peak / end", p => F($"{p.StartResidentMegabytes:F0} / {p.PeakResidentMegabytes:F0} / {p.ResidentMegabytes:F0} MB"));
            Row("other processes' CPU", p => p.OtherCpuPercent is double c ? F($"{c:F0} %") : "n/a");
            table.AddRow("test accuracy", string.Empty, Markup.Escape(F($"{Result.Accuracy:P2}")), string.Empty);
            if (Preset && Settings.Model == "nasbert-size")
            {
                table.AddRow("vs ML.NET NAS-BERT",
                    Markup.Escape(F($"{Result.Training.RowsPerSecond / Reference.TrainingRowsPerSecond:F2}× of {Reference.TrainingRowsPerSecond}")),
                    Markup.Escape(F($"{Result.Scoring.RowsPerSecond / Reference.ScoringRowsPerSecondHigh:F2}× of {Reference.ScoringRowsPerSecondHigh}")),
                    Markup.Escape(F($"{Result.Streaming.RowsPerSecond / Reference.ScoringRowsPerSecondHigh:F2}× of {Reference.ScoringRowsPerSecondHigh}")));
            }

            return table;
        }

        public string MemorySummary()
        {
            var curve = Result.StreamingMemory;
            return F($"streaming memory over {Result.Streaming.Rows:N0} rows: RSS first {curve[0].ResidentMegabytes:F0} MB, last {curve[^1].ResidentMegabytes:F0} MB, max {curve.Max(c => c.ResidentMegabytes):F0} MB, slope {Result.StreamingSlopeMegabytesPer10kRows:F2} MB per 10k rows (second half); ") +
                F($"managed heap first {curve[0].ManagedMegabytes:F1} MB, last {curve[^1].ManagedMegabytes:F1} MB, max {curve.Max(c => c.ManagedMegabytes):F1} MB. Process peak RSS {Result.PeakResidentMegabytes:F0} MB.");
        }

        public JsonObject Json()
        {
            var config = Result.Config;
            var curve = Result.StreamingMemory;
            var scoring = Phase(Result.Scoring);
            scoring["accuracy"] = Round(Result.Accuracy, 4);
            scoring["log_loss"] = Round(Result.LogLoss, 4);
            var streaming = Phase(Result.Streaming);
            streaming["rss_first_mb"] = Round(curve[0].ResidentMegabytes, 1);
            streaming["rss_last_mb"] = Round(curve[^1].ResidentMegabytes, 1);
            streaming["rss_max_mb"] = Round(curve.Max(c => c.ResidentMegabytes), 1);
            streaming["rss_slope_mb_per_10k_rows"] = Round(Result.StreamingSlopeMegabytesPer10kRows, 3);
            streaming["managed_first_mb"] = Round(curve[0].ManagedMegabytes, 2);
            streaming["managed_last_mb"] = Round(curve[^1].ManagedMegabytes, 2);
            streaming["managed_max_mb"] = Round(curve.Max(c => c.ManagedMegabytes), 2);
            streaming["memory_curve"] = new JsonArray([.. curve.Select(c => (JsonNode)new JsonObject
            {
                ["rows"] = c.Rows,
                ["seconds"] = Round(c.Seconds, 3),
                ["rss_mb"] = Round(c.ResidentMegabytes, 1),
                ["managed_mb"] = Round(c.ManagedMegabytes, 2),
            })]);

            return new JsonObject
            {
                ["benchmark"] = "pipeline",
                ["model"] = Settings.Model,
                ["preset"] = Preset,
                ["family"] = config.Family.ToString(),
                ["kind"] = Result.Kind.ToString().ToLowerInvariant(),
                ["layers"] = config.NumLayers,
                ["hidden_size"] = config.HiddenSize,
                ["heads"] = config.NumHeads,
                ["intermediate_size"] = config.IntermediateSize,
                ["vocab_size"] = config.VocabSize,
                ["tokenizer_vocab_size"] = TokenizerVocabulary,
                ["parameters"] = Result.Parameters,
                ["train_file"] = Settings.Data.Name,
                ["test_file"] = Settings.Test.Name,
                ["train_rows"] = Result.TrainRows,
                ["test_rows"] = Result.TestRows,
                ["epochs"] = Settings.Epochs,
                ["batch_size"] = Settings.BatchSize,
                ["max_length"] = Settings.MaxLength,
                ["learning_rate"] = Settings.LearningRate,
                ["threads"] = get_num_threads(),
                ["seed"] = Settings.Seed,
                ["strategy"] = StrategyName(Settings.Strategy),
                ["precision"] = PrecisionOption.Name(Result.Precision),
                ["stream_rows"] = Settings.StreamRows,
                ["sample_every"] = Settings.SampleEvery,
                ["training"] = Phase(Result.Training),
                ["scoring"] = scoring,
                ["streaming"] = streaming,
                ["peak_rss_mb"] = Round(Result.PeakResidentMegabytes, 1),
                ["reference"] = new JsonObject
                {
                    ["source"] = "ML.NET TorchSharp TextClassification (NAS-BERT, 4.5 M parameters), SST-2 sentences, batch 32, as measured in the project's issue",
                    ["training_rows_per_s"] = Reference.TrainingRowsPerSecond,
                    ["scoring_rows_per_s_low"] = Reference.ScoringRowsPerSecondLow,
                    ["scoring_rows_per_s_high"] = Reference.ScoringRowsPerSecondHigh,
                    ["batched_rows_per_s"] = Reference.BatchedRowsPerSecond,
                    ["peak_rss_mb"] = Reference.PeakResidentMegabytes,
                },
            };
        }

        private static JsonObject Phase(PipelinePhase p) => new()
        {
            ["rows"] = p.Rows,
            ["seconds"] = Round(p.Seconds, 3),
            ["rows_per_s"] = Round(p.RowsPerSecond, 2),
            ["model_seconds"] = Round(p.ModelSeconds, 3),
            ["outside_seconds"] = Round(p.OutsideSeconds, 3),
            ["outside_share"] = Round(p.OutsideShare, 4),
            ["stages_seconds"] = new JsonObject
            {
                ["read_rows"] = Round(p.ReadRowsSeconds, 4),
                ["setup"] = Round(p.SetupSeconds, 4),
                ["tokenize"] = Round(p.TokenizeSeconds, 4),
                ["batch"] = Round(p.BatchSeconds, 4),
                ["forward"] = Round(p.ForwardSeconds, 4),
                ["backward"] = Round(p.BackwardSeconds, 4),
                ["optimizer_step"] = Round(p.OptimizerStepSeconds, 4),
                ["other"] = Round(p.OtherSeconds, 4),
            },
            ["batches"] = p.Batches,
            ["tokens"] = p.Tokens,
            ["padded_tokens"] = p.PaddedTokens,
            ["padding_share"] = Round(p.PaddingShare, 4),
            ["start_rss_mb"] = Round(p.StartResidentMegabytes, 1),
            ["peak_rss_mb"] = Round(p.PeakResidentMegabytes, 1),
            ["rss_mb"] = Round(p.ResidentMegabytes, 1),
            ["other_cpu_percent"] = p.OtherCpuPercent is double c ? Round(c, 1) : null,
        };

        private static double Share(double part, double whole) => whole > 0 ? part / whole : 0;

        private static double Round(double value, int digits) => Math.Round(value, digits);

        private static string F(FormattableString value) => value.ToString(CultureInfo.InvariantCulture);
    }
}
