using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Training;
using MLNetTransformerExtensions.Training.Pretraining;
using Spectre.Console;

namespace MLNetTransformerExtensions.Cli.Commands;

/// <summary>
/// <c>pretrain</c>: pretrains a masked-LM encoder or causal-LM decoder on text files (from a preset, or continuing a
/// model), with a progress bar of loss, tokens per second and time left, checkpoints that <c>--resume</c> continues, and
/// a HuggingFace folder at the end that <c>train --model</c> fine-tunes from.
/// </summary>
internal static class PretrainCommand
{
    // Library option names as the user typed them, for error messages.
    private static readonly (string Property, string Option)[] OptionNames =
    [
        (nameof(PretrainingOptions.VocabularySize), "--vocab-size"),
        (nameof(PretrainingOptions.Steps), "--steps"),
        (nameof(PretrainingOptions.Epochs), "--epochs"),
        (nameof(PretrainingOptions.BatchSize), "--batch-size"),
        (nameof(PretrainingOptions.LearningRate), "--learning-rate"),
        (nameof(PretrainingOptions.MaxLength), "--max-length"),
        (nameof(PretrainingOptions.Seed), "--seed"),
        (nameof(PretrainingOptions.CheckpointEvery), "--checkpoint-every"),
        (nameof(PretrainingOptions.EvaluateEvery), "--eval-every"),
        (nameof(PretrainingOptions.ValidationFiles), "--validation"),
        (nameof(PretrainingOptions.Tokenizer), "--tokenizer"),
        (nameof(PretrainingOptions.From), "--from"),
        (nameof(PretrainingOptions.Kind), "--kind"),
        (nameof(PretrainingOptions.Size), "--preset"),
    ];

    private sealed record Settings(
        string[] Inputs, string? Kind, string Preset, string? From, string? Tokenizer, int? VocabularySize, int? Steps, int? Epochs,
        int BatchSize, double? LearningRate, int? MaxLength, int Seed, int CheckpointEvery, int EvaluateEvery, string[]? Validation,
        string Output, bool Resume, bool Json, TrainingPrecision Precision = TrainingPrecision.Float32);

    public static Command Create()
    {
        var input = new Option<string[]>("--input") { Description = "UTF-8 text files to pretrain on, read line by line (several may follow one --input). Unlabelled text and a task's training split, never the text of a split you report accuracy on.", Required = true, AllowMultipleArgumentsPerToken = true };
        var kind = new Option<string?>("--kind") { Description = "encoder (masked LM, BERT) or decoder (causal LM, GPT-2). Default: the --from model's kind, else encoder." };
        kind.AcceptOnlyFromAmong("encoder", "decoder");
        var preset = new Option<string>("--preset") { Description = "Size of a model from scratch: tiny (2 layers × 128, 1.5 M parameters), mini (4 × 256, 7.4 M) or small (6 × 512, 36 M), with their own vocabulary sizes.", DefaultValueFactory = _ => "tiny" };
        preset.AcceptOnlyFromAmong([.. ModelSize.Presets.Select(p => p.Name)]);
        var from = new Option<string?>("--from") { Description = $"Continue pretraining this model (domain adaptation) instead of starting from scratch: a folder, hub id (owner/name[@revision]) or built-in model ({string.Join(", ", Builtin.BuiltinModels.Names)})." };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "From scratch: a tokenizer folder (e.g. from the vocab command). Default: train one on the input (WordPiece for encoders, byte-level BPE for decoders)." };
        var vocabSize = new Option<int?>("--vocab-size") { Description = "Size of the vocabulary trained when no --tokenizer is given (default: the preset's, 8000 / 16000 / 32000)." };
        var steps = new Option<int?>("--steps") { Description = "Optimiser steps to take (or give --epochs)." };
        var epochs = new Option<int?>("--epochs") { Description = "Passes over the training text (default 1 when --steps is not given)." };
        var batchSize = new Option<int>("--batch-size") { Description = "Sequences per step.", DefaultValueFactory = _ => 32 };
        var learningRate = new Option<double?>("--learning-rate") { Description = "Peak learning rate of AdamW (default 5e-4 from scratch, 5e-5 with --from)." };
        var maxLength = new Option<int?>("--max-length") { Description = "Tokens per packed sequence (default: the preset's 128 / 128 / 256 positions; 128 with --from)." };
        var seed = new Option<int>("--seed") { Description = "Seed: the same seed and input give the same model.", DefaultValueFactory = _ => 1 };
        var checkpointEvery = new Option<int>("--checkpoint-every") { Description = "Write a resumable checkpoint every N steps (0: only at the end and when stopped).", DefaultValueFactory = _ => 500 };
        var evalEvery = new Option<int>("--eval-every") { Description = "Measure the validation loss every N steps, besides each epoch's end (0: epoch ends only).", DefaultValueFactory = _ => 0 };
        var validation = new Option<string[]?>("--validation") { Description = "Held-out text files for the validation loss (default: every 20th packed sequence of the input, never trained on).", AllowMultipleArgumentsPerToken = true };
        var output = new Option<string>("--output") { Description = "Folder for the HuggingFace model (config.json, model.safetensors, tokenizer files, README.md) and its checkpoint/ subfolder.", Required = true };
        var resume = new Option<bool>("--resume") { Description = "Continue the run whose checkpoint is in --output, exactly where it stopped; give the same options and inputs." };
        var json = new Option<bool>("--json") { Description = "End stdout with one JSON line of the summary." };
        var precision = PrecisionOption.CreateForTraining(PrecisionOption.TrainingDescription + " Checkpoints are float32, so --resume may change it.");

        var command = new Command("pretrain", "Pretrain a masked-LM encoder or causal-LM decoder on text files, from scratch or continuing a model, into a HuggingFace folder.")
        {
            input, kind, preset, from, tokenizer, vocabSize, steps, epochs, batchSize, learningRate, maxLength, seed, checkpointEvery, evalEvery,
            validation, output, resume, json, precision,
        };
        command.SetAction((parse, cancellation) => Task.FromResult(Run(new Settings(
            parse.GetValue(input)!, parse.GetValue(kind), parse.GetValue(preset)!, parse.GetValue(from), parse.GetValue(tokenizer), parse.GetValue(vocabSize),
            parse.GetValue(steps), parse.GetValue(epochs), parse.GetValue(batchSize), parse.GetValue(learningRate), parse.GetValue(maxLength), parse.GetValue(seed),
            parse.GetValue(checkpointEvery), parse.GetValue(evalEvery), parse.GetValue(validation), parse.GetValue(output)!, parse.GetValue(resume),
            parse.GetValue(json), PrecisionOption.ParseTraining(parse.GetValue(precision))), cancellation)));
        return command;
    }

    private static int Run(Settings s, CancellationToken cancellation)
    {
        var console = AnsiConsole.Console;
        var step = 0;

        // The first Ctrl+C (or SIGTERM) stops after the current step and writes a checkpoint; a second one ends the process.
        using var signals = new StopSignals(cancellation, "Stopping after this step to write a checkpoint (Ctrl+C again quits at once).");
        try
        {
            var from = s.From is null ? null : ModelArgument.Resolve(s.From);
            var kind = s.Kind is not null ? (s.Kind == "decoder" ? PretrainingKind.Decoder : PretrainingKind.Encoder)
                : from is not null && TransformerConfig.FromFolder(from).Family == ModelFamily.Gpt2 ? PretrainingKind.Decoder
                : PretrainingKind.Encoder;
            var options = new PretrainingOptions
            {
                Kind = kind,
                Size = ModelSize.FromName(s.Preset),
                From = from,
                Tokenizer = s.Tokenizer,
                VocabularySize = s.VocabularySize,
                Steps = s.Steps,
                Epochs = s.Epochs,
                BatchSize = s.BatchSize,
                LearningRate = s.LearningRate,
                MaxLength = s.MaxLength,
                Seed = s.Seed,
                CheckpointEvery = s.CheckpointEvery,
                EvaluateEvery = s.EvaluateEvery,
                ValidationFiles = s.Validation is { Length: > 0 } files ? files : null,
                Resume = s.Resume,
                Precision = s.Precision,
            };

            PretrainingResult result = null!;
            console.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .Start(context =>
                {
                    var bars = new Dictionary<PretrainingStage, ProgressTask>();
                    ProgressTask Bar(PretrainingStage stage, string description)
                    {
                        // A new stage means the ones before it are done.
                        foreach (var earlier in bars.Where(b => b.Key < stage))
                        {
                            earlier.Value.Value = earlier.Value.MaxValue;
                        }

                        return bars.TryGetValue(stage, out var bar) ? bar : bars[stage] = context.AddTask(description, maxValue: 1);
                    }

                    var gate = new Lock();
                    var progress = new SynchronousProgress<PretrainingProgress>(p =>
                    {
                        lock (gate)
                        {
                            step = Math.Max(step, p.Step);
                            if (p.Notice is { } notice)
                            {
                                console.MarkupLine(Markup.Escape($"note: {notice}"));
                            }

                            switch (p.Stage)
                            {
                                case PretrainingStage.TrainingTokenizer or PretrainingStage.ReadingCorpus or PretrainingStage.FastForwarding:
                                    var reading = Bar(p.Stage, p.Stage switch
                                    {
                                        PretrainingStage.TrainingTokenizer => "training the vocabulary",
                                        PretrainingStage.ReadingCorpus => "reading the held-out text",
                                        _ => "finding the resume position",
                                    });
                                    reading.MaxValue = Math.Max(1, p.Total);
                                    reading.Value = Math.Min(p.Completed, reading.MaxValue);
                                    break;
                                case PretrainingStage.Training:
                                    var training = Bar(p.Stage, "training");
                                    training.MaxValue = Math.Max(1, p.TotalSteps);
                                    training.Value = p.Step;
                                    training.Description = Markup.Escape(FormattableString.Invariant(
                                        $"step {p.Step}/{p.TotalSteps} epoch {p.Epoch} loss {p.Loss:0.000} {p.TokensPerSecond:N0} tok/s lr {p.LearningRate:0.0e0}"));
                                    break;
                                case PretrainingStage.Validated:
                                    console.MarkupLine(Markup.Escape(FormattableString.Invariant(
                                        $"step {p.Step}: validation loss {p.ValidationLoss:0.000}, perplexity {p.ValidationPerplexity:0.0}")));
                                    break;
                                case PretrainingStage.Exporting:
                                    Bar(p.Stage, "writing the model");
                                    break;
                            }
                        }
                    });
                    result = Pretrainer.Train(s.Inputs, s.Output, options, progress, signals.Token);
                    foreach (var bar in bars.Values)
                    {
                        bar.Value = bar.MaxValue;
                    }
                });

            using (result)
            {
                if (result.LoadReport is { IsComplete: false } report)
                {
                    console.MarkupLine(Markup.Escape(report.ToString()));
                }

                Render(console, result, options);
                if (s.Json)
                {
                    Console.Out.Flush();
                    Console.WriteLine(ToJson(result, options).ToJsonString());
                }
            }

            return 0;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine(step > 0
                ? $"error: stopped at step {step}; a checkpoint is in {Path.Combine(Path.GetFullPath(s.Output), "checkpoint")}. Run the same command with --resume to continue."
                : "error: pretraining was cancelled before the first step; nothing was saved.");
            return 130;
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"error: {ForCommandLine(e)}");
            return 1;
        }
        catch (Exception e) when (e is CliException or IOException or InvalidDataException or InvalidOperationException or NotSupportedException
            or UnauthorizedAccessException or Hub.HubException)
        {
            Console.Error.WriteLine($"error: {ForCommandLine(e)}");
            return 1;
        }
    }

    private static void Render(IAnsiConsole console, PretrainingResult result, PretrainingOptions options)
    {
        static string Number(double value, string format) => value.ToString(format, CultureInfo.InvariantCulture);
        var config = result.Model.Config;
        var table = new Table().Border(TableBorder.Rounded).Title(Markup.Escape($"Pretrained {config.Json["model_type"]} {(result.Kind == PretrainingKind.Encoder ? "masked LM" : "causal LM")}"))
            .AddColumn("Item").AddColumn("Value");
        table.AddRow("Model", Markup.Escape(options.From is null
            ? $"{options.Size.Name} preset from scratch: {config.NumLayers} × {config.HiddenSize}, {config.NumHeads} heads, {config.IntermediateSize} feed-forward"
            : $"continued from {options.From}"));
        table.AddRow("Parameters", Number(result.ParameterCount, "N0"));
        table.AddRow("Vocabulary", Markup.Escape($"{Number(config.VocabSize, "N0")} tokens{(result.TrainedTokenizer ? ", trained on the input" : string.Empty)}"));
        table.AddRow("Steps", Markup.Escape($"{Number(result.Steps, "N0")} × {options.BatchSize} sequences of {result.MaxLength} tokens, {result.Epochs} epoch(s) begun{(result.ResumedFromStep is int resumed ? $", resumed at step {resumed}" : string.Empty)}"));
        table.AddRow("Tokens trained on", Number(result.TrainingTokens, "N0"));
        table.AddRow("Throughput", Markup.Escape($"{Number(result.TokensPerSecond, "N0")} tokens/s"));
        table.AddRow("Training time", Markup.Escape($"{Number(result.TrainingTime.TotalSeconds, "0.0")} s"));
        if (result.ValidationLoss is double loss)
        {
            var before = result.InitialValidationLoss is double initial ? $" (before: {Number(initial, "0.000")}, perplexity {Number(Math.Exp(initial), "0.0")})" : string.Empty;
            table.AddRow("Validation", Markup.Escape($"loss {Number(loss, "0.000")}, perplexity {Number(result.ValidationPerplexity!.Value, "0.0")}{before} on {result.ValidationSequences} sequences"));
        }
        else
        {
            table.AddRow("Validation", "none (no held-out text: give more text or --validation files)");
        }

        table.AddRow("Output", Markup.Escape(result.OutputFolder));
        console.Write(table);
    }

    private static JsonObject ToJson(PretrainingResult result, PretrainingOptions options) => new()
    {
        ["output"] = result.OutputFolder,
        ["kind"] = result.Kind == PretrainingKind.Encoder ? "encoder" : "decoder",
        ["training_precision"] = PrecisionOption.Name(options.Precision),
        ["model_type"] = result.Model.Config.Json["model_type"]?.DeepClone(),
        ["preset"] = options.From is null ? options.Size.Name : null,
        ["from"] = options.From,
        ["parameters"] = result.ParameterCount,
        ["vocab_size"] = result.Model.Config.VocabSize,
        ["max_length"] = result.MaxLength,
        ["steps"] = result.Steps,
        ["epochs"] = result.Epochs,
        ["tokens"] = result.TrainingTokens,
        ["tokens_per_second"] = result.TokensPerSecond,
        ["training_seconds"] = result.TrainingTime.TotalSeconds,
        ["validation_sequences"] = result.ValidationSequences,
        ["initial_validation_loss"] = result.InitialValidationLoss,
        ["validation_loss"] = result.ValidationLoss,
        ["validation_perplexity"] = result.ValidationPerplexity,
        ["resumed_from_step"] = result.ResumedFromStep,
    };

    // Say the option the user typed instead of the library's property name, and drop ArgumentException's " (Parameter 'X')".
    private static string ForCommandLine(Exception e)
    {
        var message = e.Message;
        var parameter = message.IndexOf(" (Parameter '", StringComparison.Ordinal);
        if (e is ArgumentException && parameter >= 0)
        {
            message = message[..parameter];
        }

        message = message.Replace($"({nameof(PretrainingOptions.Resume)})", "(--resume)", StringComparison.Ordinal);
        foreach (var (property, option) in OptionNames)
        {
            message = Regex.Replace(message, $@"\b{property}\b", option);
        }

        return message;
    }

    // Progress<T> posts to the thread pool, so updates could arrive after the bar is gone; report in place instead.
    private sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
