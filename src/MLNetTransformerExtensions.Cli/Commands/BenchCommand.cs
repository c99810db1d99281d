using System.CommandLine;
using System.Globalization;
using System.Reflection;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using MLNetTransformerExtensions.Benchmarks;
using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Runtime;
using MLNetTransformerExtensions.Tokenization;
using MLNetTransformerExtensions.Training;
using Spectre.Console;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Cli.Commands;

/// <summary>
/// <c>bench</c>: inference and training throughput of a model on this machine, its model FLOP utilisation against the
/// fp32 matmul rate libtorch reaches here in the same run, resident memory, and optionally tokenization throughput on
/// real text. A table goes to stdout and, with <c>--json</c>, a JSON file for comparing runs across commits.
/// Progress goes to stderr.
/// </summary>
internal static class BenchCommand
{
    /// <summary>Above this share of CPU time taken by other processes, a run is flagged as noisy.</summary>
    private const double NoisyContentionPercent = 5;

    public static Command Create()
    {
        var config = new Option<string>("--config") { Description = "bert-mini, gpt2-mini, nasbert-size, or a model folder or hub id (its config.json; weights are not loaded, they do not change the timings).", DefaultValueFactory = _ => "bert-mini" };
        var batchSize = new Option<int>("--batch-size") { Description = "Sequences per step.", DefaultValueFactory = _ => 32 };
        var sequenceLength = new Option<int>("--seq-len") { Description = "Tokens per sequence (no padding).", DefaultValueFactory = _ => 128 };
        var threads = new Option<int?>("--threads") { Description = "libtorch threads (default: the machine's logical cores)." };
        var steps = new Option<int>("--steps") { Description = "Timed steps for inference and for training.", DefaultValueFactory = _ => 10 };
        var warmup = new Option<int>("--warmup") { Description = "Untimed steps before the timed ones.", DefaultValueFactory = _ => 2 };
        var json = new Option<FileInfo?>("--json") { Description = "Also write the results to this JSON file." };
        var text = new Option<FileInfo?>("--text") { Description = "Measure tokenization on these texts: .txt (one per line), .jsonl ({\"text\": ...}) or .tsv with a text or sentence column." };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer for --text: a model folder or hub id (default: the --config folder; required with a preset)." };
        var matmulSize = new Option<int>("--matmul-size") { Description = "Side of the square fp32 matrices whose product measures the matmul ceiling.", DefaultValueFactory = _ => 2048 };
        var profile = new Option<bool>("--profile") { Description = "Also show where a training step's time goes: its phases (forward, loss, backward, clipping, AdamW, freeing tensors, bf16 bookkeeping) and one layer's operations (matmuls, attention, softmax, LayerNorm, activation, dropout) at the model's shapes." };
        var precision = PrecisionOption.CreateForTraining("Number format of the inference and training steps: fp32 (default), bf16 (training in mixed precision, as train --precision bf16), or auto (bf16 only where the bf16 probe finds it faster). bf16 also measures the bf16 matmul ceiling.");

        var command = new Command("bench", "Measure inference and training throughput, model FLOP utilisation, memory and tokenization speed on this machine.")
        {
            config, batchSize, sequenceLength, threads, steps, warmup, json, text, tokenizer, matmulSize, precision, profile,
        };
        command.Subcommands.Add(PipelineBenchCommand.Create());
        command.Subcommands.Add(SoakBenchCommand.Create());
        command.SetAction(parse => Run(new Settings(
            parse.GetValue(config)!, parse.GetValue(batchSize), parse.GetValue(sequenceLength), parse.GetValue(threads) ?? Environment.ProcessorCount,
            parse.GetValue(steps), parse.GetValue(warmup), parse.GetValue(json), parse.GetValue(text), parse.GetValue(tokenizer), parse.GetValue(matmulSize),
            PrecisionOption.ParseTraining(parse.GetValue(precision)), parse.GetValue(profile))));
        return command;
    }

    private sealed record Settings(string Config, int BatchSize, int SequenceLength, int Threads, int Steps, int Warmup,
        FileInfo? Json, FileInfo? Text, string? Tokenizer, int MatmulSize, TrainingPrecision Requested = TrainingPrecision.Float32, bool Profile = false)
    {
        /// <summary>The precision asked for with Auto resolved by the bf16 probe (set in <see cref="Run"/>).</summary>
        public TrainingPrecision Training { get; init; } = Requested;

        public InferencePrecision Precision => Training == TrainingPrecision.BFloat16 ? InferencePrecision.BFloat16 : InferencePrecision.Float32;
    }

    private static int Run(Settings settings)
    {
        try
        {
            // As the trainers resolve it: auto takes bf16 only where the probe finds it faster; explicit bf16 runs anyway.
            var probe = settings.Requested == TrainingPrecision.Float32 ? null : BFloat16Support.Current;
            settings = settings with { Training = settings.Requested == TrainingPrecision.Auto ? (probe!.IsFaster ? TrainingPrecision.BFloat16 : TrainingPrecision.Float32) : settings.Requested };
            if (probe is not null)
            {
                Console.Error.WriteLine($"bf16 probe: {probe}; {PrecisionOption.Name(settings.Requested)} trains in {PrecisionOption.Name(settings.Training)}");
            }

            Check(settings.BatchSize >= 1, $"--batch-size must be at least 1 (got {settings.BatchSize}).");
            Check(settings.SequenceLength >= 1, $"--seq-len must be at least 1 (got {settings.SequenceLength}).");
            Check(settings.Threads >= 1, $"--threads must be at least 1 (got {settings.Threads}).");
            Check(settings.Steps >= 1, $"--steps must be at least 1 (got {settings.Steps}).");
            Check(settings.Warmup >= 0, $"--warmup must be 0 or more (got {settings.Warmup}).");
            Check(settings.MatmulSize >= 1, $"--matmul-size must be at least 1 (got {settings.MatmulSize}).");

            // Everything that can fail on user input is checked before the first timed step.
            var runtime = TorchRuntime.EnsureInitialized();
            var (config, modelFolder) = ResolveConfig(settings.Config);
            var limit = ModelBenchmark.MaxSequenceLength(config);
            Check(settings.SequenceLength <= limit, $"--seq-len {settings.SequenceLength} is longer than the {limit} positions of {settings.Config}.");
            var (tokenizer, tokenizerName, texts) = ReadTokenizationInputs(settings, modelFolder);

            set_num_threads(settings.Threads);
            var stderr = Console.Error;
            manual_seed(0);
            using var model = TransformerModels.CreateForSequenceClassification(config);
            var parameters = ModelBenchmark.CountParameters(model);
            var forwardFlops = ModelBenchmark.ForwardFlopsPerSequence(config, settings.SequenceLength);

            var bfloat16 = settings.Precision == InferencePrecision.BFloat16;
            stderr.WriteLine($"bench {settings.Config}: {settings.BatchSize} × {settings.SequenceLength} tokens, {get_num_threads()} threads, {settings.Warmup} warm-up + {settings.Steps} timed steps, {PrecisionOption.Name(settings.Precision)} inference");
            // The ceiling is measured before and after the model steps and the better one kept: another process slowing
            // one of them should not make the ceiling look lower (and the utilisation higher) than the machine allows.
            stderr.WriteLine($"  fp32 matmul ceiling ({settings.MatmulSize}×{settings.MatmulSize})...");
            var matmulBefore = ModelBenchmark.MeasureMatmulGflops(settings.MatmulSize);
            double? bf16MatmulBefore = null, bf16MatmulAfter = null;
            if (bfloat16)
            {
                stderr.WriteLine($"  bf16 matmul ceiling ({settings.MatmulSize}×{settings.MatmulSize})...");
                bf16MatmulBefore = ModelBenchmark.MeasureMatmulGflops(settings.MatmulSize, precision: InferencePrecision.BFloat16);
            }

            stderr.WriteLine($"  {PrecisionOption.Name(settings.Precision)} inference...");
            var cpu = CpuContention.Start();
            var inference = ModelBenchmark.MeasureInference(model, settings.BatchSize, settings.SequenceLength, settings.Warmup, settings.Steps, precision: settings.Precision);
            var afterInference = ProcessMemory.Read();
            var inferenceContention = cpu.OtherProcessesPercent();
            stderr.WriteLine($"  {PrecisionOption.Name(settings.Training)} training...");
            cpu = CpuContention.Start();
            var training = ModelBenchmark.MeasureTraining(model, settings.BatchSize, settings.SequenceLength, settings.Warmup, settings.Steps, precision: settings.Training);
            var afterTraining = ProcessMemory.Read();
            var trainingContention = cpu.OtherProcessesPercent();
            TrainingProfile? profile = null;
            if (settings.Profile)
            {
                stderr.WriteLine($"  {PrecisionOption.Name(settings.Training)} training step profile...");
                profile = ModelBenchmark.ProfileTraining(model, settings.BatchSize, settings.SequenceLength, settings.Warmup, settings.Steps, precision: settings.Training);
            }
            stderr.WriteLine("  fp32 matmul ceiling again...");
            var matmulAfter = ModelBenchmark.MeasureMatmulGflops(settings.MatmulSize);
            if (bfloat16)
            {
                stderr.WriteLine("  bf16 matmul ceiling again...");
                bf16MatmulAfter = ModelBenchmark.MeasureMatmulGflops(settings.MatmulSize, precision: InferencePrecision.BFloat16);
            }

            TokenizationTiming? tokenization = null;
            if (tokenizer is not null)
            {
                stderr.WriteLine($"  tokenization ({texts!.Count} texts)...");
                tokenization = ModelBenchmark.MeasureTokenization(tokenizer, texts, settings.BatchSize, settings.SequenceLength);
            }

            var result = new Results(settings, config, runtime, parameters, forwardFlops, inference, training, matmulBefore, matmulAfter,
                afterInference, afterTraining, tokenization, tokenizerName, inferenceContention, trainingContention, bf16MatmulBefore, bf16MatmulAfter, profile);
            AnsiConsole.Write(result.Table());
            if (result.ProfileTable() is Table profileTable)
            {
                AnsiConsole.Write(profileTable);
            }
            var contention = Math.Max(inferenceContention ?? 0, trainingContention ?? 0);
            if (contention > NoisyContentionPercent)
            {
                stderr.WriteLine(FormattableString.Invariant($"warning: other processes took {contention:F0} % of the machine's CPU time during the measurement, so these timings understate what this machine can do; rerun when it is idle."));
            }

            if (settings.Json is not null)
            {
                settings.Json.Directory?.Create();
                File.WriteAllText(settings.Json.FullName, result.Json().ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) + "\n");
                stderr.WriteLine($"Wrote {settings.Json.FullName}");
            }

            return 0;
        }
        catch (Exception e) when (e is CliException or IOException or InvalidDataException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }

    private static void Check(bool ok, string message)
    {
        if (!ok)
        {
            throw new CliException(message);
        }
    }

    /// <summary>A preset's config, or the config.json of a folder or hub id (and that folder, for its tokenizer).</summary>
    private static (TransformerConfig Config, string? Folder) ResolveConfig(string value)
    {
        if (ModelBenchmark.Preset(value) is { } preset)
        {
            return (preset, null);
        }

        var folder = ModelArgument.Resolve(value);
        return (TransformerConfig.FromFolder(folder), folder);
    }

    private static (TransformerTokenizer? Tokenizer, string? Name, List<string>? Texts) ReadTokenizationInputs(Settings settings, string? modelFolder)
    {
        if (settings.Text is null)
        {
            Check(settings.Tokenizer is null, "--tokenizer only matters with --text (the texts to tokenize).");
            return (null, null, null);
        }

        var source = settings.Tokenizer ?? modelFolder
            ?? throw new CliException($"--text needs a tokenizer, and the {settings.Config} preset has none: pass --tokenizer with a model folder or hub id (e.g. one whose vocabulary matches the preset).");
        var folder = settings.Tokenizer is null ? modelFolder! : ModelArgument.Resolve(settings.Tokenizer);
        var texts = ReadTexts(settings.Text);
        Check(texts.Count > 0, $"'{settings.Text.FullName}' has no non-empty texts to tokenize.");
        return (TransformerTokenizer.FromFolder(folder), source, texts);
    }

    /// <summary>Non-empty texts of a .txt, .jsonl or .tsv file (a .tsv's header names a text or sentence column).</summary>
    private static List<string> ReadTexts(FileInfo file)
    {
        if (!file.Extension.Equals(".tsv", StringComparison.OrdinalIgnoreCase))
        {
            return [.. InputRecords.Read(file).Select(r => r.Text).Where(t => !string.IsNullOrWhiteSpace(t))];
        }

        Check(file.Exists, $"The text file '{file.FullName}' does not exist.");
        using var lines = File.ReadLines(file.FullName).GetEnumerator();
        Check(lines.MoveNext(), $"'{file.FullName}' is empty; expected a header row naming a text or sentence column.");
        var header = lines.Current.Split('\t');
        var column = Array.FindIndex(header, h => h.Trim().Equals("text", StringComparison.OrdinalIgnoreCase) || h.Trim().Equals("sentence", StringComparison.OrdinalIgnoreCase));
        Check(column >= 0, $"{file.Name}:1: the header row ({string.Join(", ", header)}) has no 'text' or 'sentence' column to tokenize.");
        var texts = new List<string>();
        while (lines.MoveNext())
        {
            var fields = lines.Current.Split('\t');
            if (column < fields.Length && !string.IsNullOrWhiteSpace(fields[column]))
            {
                texts.Add(fields[column]);
            }
        }

        return texts;
    }

    /// <summary>The measurements of one run and how they are shown: a table and the JSON file.</summary>
    private sealed record Results(
        Settings Settings, TransformerConfig Config, TorchRuntimeStatus Runtime, long Parameters, double ForwardFlops,
        StepTimings Inference, StepTimings Training, double MatmulBefore, double MatmulAfter, ProcessMemory AfterInference, ProcessMemory AfterTraining,
        TokenizationTiming? Tokenization, string? TokenizerName, double? InferenceContention, double? TrainingContention,
        double? Bf16MatmulBefore = null, double? Bf16MatmulAfter = null, TrainingProfile? Profile = null)
    {
        private double MatmulGflops => Math.Max(MatmulBefore, MatmulAfter);

        /// <summary>The bf16 ceiling, measured only for bf16 inference: the better of before and after, like the fp32 one.</summary>
        private double? Bf16MatmulGflops => Bf16MatmulBefore is double before && Bf16MatmulAfter is double after ? Math.Max(before, after) : null;

        private const int TrainingPasses = 3; // forward + backward (two matmuls per forward matmul), see ForwardFlopsPerSequence

        private double InferenceGflops => Inference.SequencesPerSecond * ForwardFlops / 1e9;

        private double TrainingGflops => Training.SequencesPerSecond * TrainingPasses * ForwardFlops / 1e9;

        public Table Table()
        {
            var table = new Table().Border(TableBorder.Rounded).AddColumn("Measure").AddColumn(new TableColumn("Value").RightAligned()).AddColumn("Notes");
            void Row(string name, string value, string note = "") => table.AddRow(Markup.Escape(name), Markup.Escape(value), Markup.Escape(note));

            Row("config", Settings.Config, $"{Config.Family}, {Config.NumLayers} layers, hidden {Config.HiddenSize}, {Config.NumHeads} heads, intermediate {Config.IntermediateSize}, vocab {Config.VocabSize}");
            Row("parameters", F($"{Parameters / 1e6:F2} M"));
            Row("batch × seq-len", F($"{Settings.BatchSize} × {Settings.SequenceLength}"), "random tokens, no padding");
            Row("threads", F($"{get_num_threads()}"), F($"{Environment.ProcessorCount} logical cores"));
            Row("forward FLOPs / seq", F($"{ForwardFlops / 1e9:F3} G"), "matmuls only; a training step counts 3×");
            Row("inference", F($"{Inference.SequencesPerSecond:F1} seq/s"), F($"{PrecisionOption.Name(Settings.Precision)}, median step {Inference.MedianMilliseconds:F1} ms, {InferenceGflops:F1} GFLOP/s"));
            Row("training", F($"{Training.SequencesPerSecond:F1} seq/s"), F($"median step {Training.MedianMilliseconds:F1} ms, {TrainingGflops:F1} GFLOP/s; {PrecisionOption.Name(Settings.Training)} forward, backward, AdamW, dropout on"));
            Row("fp32 matmul ceiling", F($"{MatmulGflops:F1} GFLOP/s"), F($"torch.mm {Settings.MatmulSize}×{Settings.MatmulSize}: {MatmulBefore:F1} before, {MatmulAfter:F1} after the model steps"));
            if (Bf16MatmulGflops is double bf16Ceiling)
            {
                Row("bf16 matmul ceiling", F($"{bf16Ceiling:F1} GFLOP/s"), F($"torch.mm {Settings.MatmulSize}×{Settings.MatmulSize} in bf16: {Bf16MatmulBefore:F1} before, {Bf16MatmulAfter:F1} after the model steps"));
            }

            Row("inference MFU", F($"{InferenceGflops / MatmulGflops:P1}"), "against the fp32 ceiling");
            if (Bf16MatmulGflops is double ceiling)
            {
                Row("inference MFU (bf16 ceiling)", F($"{InferenceGflops / ceiling:P1}"), "against the bf16 ceiling");
            }

            Row("training MFU", F($"{TrainingGflops / MatmulGflops:P1}"));
            if (InferenceContention is double inferenceOthers && TrainingContention is double trainingOthers)
            {
                Row("other processes' CPU", F($"{inferenceOthers:F0} % / {trainingOthers:F0} %"), F($"share of the machine's CPU time during inference / training; above {NoisyContentionPercent} % the timings are noisy"));
            }

            Row("peak RSS", F($"{AfterTraining.PeakResidentMegabytes:F0} MB"), F($"inference alone: {AfterInference.PeakResidentMegabytes:F0} MB"));
            Row("steady RSS", F($"{AfterTraining.ResidentMegabytes:F0} MB"), F($"after the training steps; after inference: {AfterInference.ResidentMegabytes:F0} MB"));
            if (Tokenization is not null)
            {
                Row("tokenization", F($"{Tokenization.TokensPerSecond:N0} tokens/s"), F($"{Tokenization.Texts} texts, {Tokenization.TokensPerPass} tokens per pass, 1 thread, {TokenizerName}"));
            }

            return table;
        }

        /// <summary>The step profile, when measured: each phase's and each layer operation's share of the profiled step.</summary>
        public Table? ProfileTable()
        {
            if (Profile is null)
            {
                return null;
            }

            var step = Profile.Steps.MedianMilliseconds;
            var table = new Table().Border(TableBorder.Rounded)
                .Title(Markup.Escape(F($"Where a {PrecisionOption.Name(Settings.Training)} training step's {step:F1} ms go (medians)")))
                .AddColumn("Part").AddColumn(new TableColumn("ms").RightAligned()).AddColumn(new TableColumn("share").RightAligned());
            void Rows(IEnumerable<PhaseTiming> parts)
            {
                foreach (var part in parts)
                {
                    table.AddRow(Markup.Escape(part.Phase), F($"{part.MedianMilliseconds:F1}"), F($"{part.MedianMilliseconds / step:P0}"));
                }
            }

            Rows(Profile.Phases);
            table.AddEmptyRow();
            table.AddRow("[bold]the layers' operations, forward + backward[/]", string.Empty, string.Empty);
            Rows(Profile.LayerOperations);
            return table;
        }

        public JsonObject Json()
        {
            var json = new JsonObject
            {
                ["config"] = Settings.Config,
                ["family"] = Config.Family.ToString(),
                ["layers"] = Config.NumLayers,
                ["hidden_size"] = Config.HiddenSize,
                ["heads"] = Config.NumHeads,
                ["intermediate_size"] = Config.IntermediateSize,
                ["vocab_size"] = Config.VocabSize,
                ["parameters"] = Parameters,
                ["batch_size"] = Settings.BatchSize,
                ["seq_len"] = Settings.SequenceLength,
                ["threads"] = get_num_threads(),
                ["warmup_steps"] = Settings.Warmup,
                ["steps"] = Settings.Steps,
                ["forward_gflop_per_seq"] = Round(ForwardFlops / 1e9, 4),
                ["inference_seq_per_s"] = Round(Inference.SequencesPerSecond, 2),
                ["training_seq_per_s"] = Round(Training.SequencesPerSecond, 2),
                ["inference_gflops"] = Round(InferenceGflops, 2),
                ["training_gflops"] = Round(TrainingGflops, 2),
                ["matmul_gflops"] = Round(MatmulGflops, 2),
                ["matmul_size"] = Settings.MatmulSize,
                ["matmul_gflops_before"] = Round(MatmulBefore, 2),
                ["matmul_gflops_after"] = Round(MatmulAfter, 2),
                ["inference_mfu"] = Round(InferenceGflops / MatmulGflops, 4),
                ["precision"] = PrecisionOption.Name(Settings.Precision),
                ["training_precision"] = PrecisionOption.Name(Settings.Training),
                ["requested_precision"] = PrecisionOption.Name(Settings.Requested),
                ["bf16_probe"] = Settings.Requested == TrainingPrecision.Float32 ? null : new JsonObject
                {
                    ["avx512_bf16"] = BFloat16Support.Current.Avx512Bf16,
                    ["amx_bf16"] = BFloat16Support.Current.AmxBf16,
                    ["fp32_gflops"] = Round(BFloat16Support.Current.Float32Gflops, 1),
                    ["bf16_gflops"] = Round(BFloat16Support.Current.BFloat16Gflops, 1),
                    ["bf16_faster"] = BFloat16Support.Current.IsFaster,
                },
                ["matmul_gflops_bf16"] = Bf16MatmulGflops is double bf16 ? Round(bf16, 2) : null,
                ["matmul_gflops_bf16_before"] = Bf16MatmulBefore is double bf16Before ? Round(bf16Before, 2) : null,
                ["matmul_gflops_bf16_after"] = Bf16MatmulAfter is double bf16After ? Round(bf16After, 2) : null,
                ["inference_mfu_vs_bf16_matmul"] = Bf16MatmulGflops is double bf16Ceiling ? Round(InferenceGflops / bf16Ceiling, 4) : null,
                ["training_mfu"] = Round(TrainingGflops / MatmulGflops, 4),
                ["training_mfu_vs_bf16_matmul"] = Bf16MatmulGflops is double bf16TrainingCeiling ? Round(TrainingGflops / bf16TrainingCeiling, 4) : null,
                ["peak_rss_mb"] = Round(AfterTraining.PeakResidentMegabytes, 1),
                ["steady_rss_mb"] = Round(AfterTraining.ResidentMegabytes, 1),
                ["inference_peak_rss_mb"] = Round(AfterInference.PeakResidentMegabytes, 1),
                ["inference_steady_rss_mb"] = Round(AfterInference.ResidentMegabytes, 1),
                ["inference_step_ms"] = Milliseconds(Inference),
                ["training_step_ms"] = Milliseconds(Training),
            };
            if (Tokenization is not null)
            {
                json["tokenizer"] = TokenizerName;
                json["text_file"] = Settings.Text!.Name;
                json["tokenization_texts"] = Tokenization.Texts;
                json["tokenization_tokens"] = Tokenization.TokensPerPass;
                json["tokenization_tokens_per_s"] = Round(Tokenization.TokensPerSecond, 0);
            }

            if (Profile is not null)
            {
                static JsonObject Medians(IEnumerable<PhaseTiming> parts) => new([.. parts.Select(p => KeyValuePair.Create(p.Phase, (JsonNode?)Round(p.MedianMilliseconds, 2)))]);
                json["training_profile"] = new JsonObject
                {
                    ["step_ms"] = Round(Profile.Steps.MedianMilliseconds, 2),
                    ["phases_ms"] = Medians(Profile.Phases),
                    ["layer_operations_ms"] = Medians(Profile.LayerOperations),
                };
            }

            json["inference_other_cpu_percent"] = InferenceContention is double inferenceOthers ? Round(inferenceOthers, 1) : null;
            json["training_other_cpu_percent"] = TrainingContention is double trainingOthers ? Round(trainingOthers, 1) : null;
            BenchEnvironment.AddTo(json, Runtime);
            return json;
        }

        private static JsonArray Milliseconds(StepTimings timings) => [.. timings.StepMilliseconds.Select(ms => (JsonNode?)Round(ms, 2))];

        private static double Round(double value, int digits) => Math.Round(value, digits);

        private static string F(FormattableString value) => value.ToString(CultureInfo.InvariantCulture);
    }
}
