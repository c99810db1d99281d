using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using MLNetTransformerExtensions.Tokenization.Vocabulary;
using Spectre.Console;

namespace MLNetTransformerExtensions.Cli.Commands;

/// <summary>
/// <c>vocab</c>: trains a WordPiece (BERT) or byte-level BPE (GPT-2) vocabulary from text files and writes the
/// HuggingFace tokenizer files into a folder, then reports sizes and throughput.
/// </summary>
internal static class VocabCommand
{
    // Library option names as the user typed them, for error messages.
    private static readonly (string Property, string Option)[] OptionNames =
    [
        (nameof(VocabularyTrainingOptions.VocabularySize), "--size"),
        (nameof(VocabularyTrainingOptions.MinimumFrequency), "--min-frequency"),
        (nameof(VocabularyTrainingOptions.AlphabetLimit), "--alphabet-limit"),
        (nameof(VocabularyTrainingOptions.ModelMaxLength), "--max-length"),
    ];

    private sealed record Settings(string[] Inputs, string Kind, int Size, string Output, bool Cased, int MinFrequency, int AlphabetLimit, int? MaxLength, bool Json);

    public static Command Create()
    {
        var input = new Option<string[]>("--input") { Description = "UTF-8 text files to train on (several may follow one --input).", Required = true, AllowMultipleArgumentsPerToken = true };
        var kind = new Option<string>("--kind") { Description = "wordpiece (BERT: vocab.txt) or bpe (GPT-2 byte-level: vocab.json + merges.txt).", Required = true };
        kind.AcceptOnlyFromAmong("wordpiece", "bpe");
        var size = new Option<int>("--size") { Description = "Vocabulary size, special tokens included (BERT 30522, GPT-2 50257).", Required = true };
        var output = new Option<string>("--output") { Description = "Folder for the tokenizer files (created if missing).", Required = true };
        var cased = new Option<bool>("--cased") { Description = "WordPiece: keep case and accents (default: lower-case and strip accents, as bert-base-uncased)." };
        var minFrequency = new Option<int>("--min-frequency") { Description = "Merge only pairs (WordPiece: keep only characters) seen at least this often.", DefaultValueFactory = _ => 2 };
        var alphabetLimit = new Option<int>("--alphabet-limit") { Description = "WordPiece: keep at most this many distinct characters, the most frequent.", DefaultValueFactory = _ => 1000 };
        var maxLength = new Option<int?>("--max-length") { Description = "model_max_length for tokenizer_config.json (default 512 for wordpiece, 1024 for bpe)." };
        var json = new Option<bool>("--json") { Description = "End stdout with one JSON line of the summary." };

        var command = new Command("vocab", "Train a WordPiece or byte-level BPE vocabulary from text files, in HuggingFace's tokenizer files.")
        {
            input, kind, size, output, cased, minFrequency, alphabetLimit, maxLength, json,
        };
        command.SetAction((parse, cancellation) => Task.FromResult(Run(new Settings(
            parse.GetValue(input)!, parse.GetValue(kind)!, parse.GetValue(size), parse.GetValue(output)!, parse.GetValue(cased),
            parse.GetValue(minFrequency), parse.GetValue(alphabetLimit), parse.GetValue(maxLength), parse.GetValue(json)), cancellation)));
        return command;
    }

    private static int Run(Settings s, CancellationToken cancellation)
    {
        try
        {
            var options = new VocabularyTrainingOptions
            {
                Kind = s.Kind == "bpe" ? VocabularyKind.ByteLevelBpe : VocabularyKind.WordPiece,
                VocabularySize = s.Size,
                MinimumFrequency = s.MinFrequency,
                AlphabetLimit = s.AlphabetLimit,
                LowerCase = !s.Cased,
                ModelMaxLength = s.MaxLength,
            };
            var console = AnsiConsole.Console;
            VocabularyTrainingSummary summary = null!;
            console.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
                .Start(context =>
                {
                    var counting = context.AddTask("counting words", maxValue: 1);
                    var merging = context.AddTask("merging pairs", autoStart: false, maxValue: Math.Max(1, s.Size));
                    var progress = new SynchronousProgress(p =>
                    {
                        var task = p.Stage == VocabularyTrainingStage.CountingWords ? counting : merging;
                        if (p.Stage != VocabularyTrainingStage.CountingWords)
                        {
                            counting.Value = counting.MaxValue;
                            merging.StartTask();
                        }

                        task.MaxValue = Math.Max(1, p.Total);
                        task.Value = Math.Max(task.Value, p.Completed);
                    });
                    summary = VocabularyTrainer.Train(s.Inputs, s.Output, options, progress, cancellation);
                    counting.Value = counting.MaxValue;
                    merging.Value = merging.MaxValue;
                });

            Render(console, summary, s.Size);
            if (s.Json)
            {
                Console.Out.Flush();
                Console.WriteLine(ToJson(summary).ToJsonString());
            }

            return 0;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("error: training was cancelled; no vocabulary was written.");
            return 130;
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"error: {ForCommandLine(e)}");
            return 1;
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }

    private static void Render(IAnsiConsole console, VocabularyTrainingSummary summary, int requested)
    {
        static string Number(double value, string format) => value.ToString(format, CultureInfo.InvariantCulture);
        var table = new Table().Border(TableBorder.Rounded).Title(Markup.Escape($"{summary.Kind} vocabulary")).AddColumn("Item").AddColumn("Value");
        var size = Number(summary.VocabularySize, "N0");
        if (summary.VocabularySize < requested)
        {
            size += $" (asked for {Number(requested, "N0")}: the corpus has no more pairs seen often enough)";
        }

        table.AddRow("Vocabulary size", Markup.Escape(size));
        table.AddRow("Alphabet", Number(summary.AlphabetSize, "N0"));
        table.AddRow("Merges", Number(summary.MergeCount, "N0"));
        table.AddRow("Input", Markup.Escape($"{Number(summary.InputBytes / 1e6, "0.0")} MB, {Number(summary.WordCount, "N0")} words, {Number(summary.DistinctWords, "N0")} distinct"));
        table.AddRow("Time", Markup.Escape($"{Number(summary.TotalTime.TotalSeconds, "0.0")} s (counting {Number(summary.CountingTime.TotalSeconds, "0.0")} s, merging {Number(summary.MergingTime.TotalSeconds, "0.0")} s)"));
        table.AddRow("Throughput", Markup.Escape($"{Number(summary.MegabytesPerSecond, "0.0")} MB/s"));
        table.AddRow("Files", Markup.Escape($"{summary.OutputFolder}: {string.Join(", ", summary.Files)}"));
        console.Write(table);
    }

    private static JsonObject ToJson(VocabularyTrainingSummary summary) => new()
    {
        ["output"] = summary.OutputFolder,
        ["kind"] = summary.Kind == VocabularyKind.ByteLevelBpe ? "bpe" : "wordpiece",
        ["vocab_size"] = summary.VocabularySize,
        ["alphabet_size"] = summary.AlphabetSize,
        ["merges"] = summary.MergeCount,
        ["input_bytes"] = summary.InputBytes,
        ["words"] = summary.WordCount,
        ["distinct_words"] = summary.DistinctWords,
        ["counting_seconds"] = summary.CountingTime.TotalSeconds,
        ["merging_seconds"] = summary.MergingTime.TotalSeconds,
        ["total_seconds"] = summary.TotalTime.TotalSeconds,
        ["mb_per_second"] = summary.MegabytesPerSecond,
        ["files"] = new JsonArray([.. summary.Files.Select(f => (JsonNode)f)]),
    };

    // ArgumentException appends " (Parameter 'X')"; say the option instead of the library's property name.
    private static string ForCommandLine(ArgumentException e)
    {
        var message = e.Message;
        var parameter = message.IndexOf(" (Parameter '", StringComparison.Ordinal);
        if (parameter >= 0)
        {
            message = message[..parameter];
        }

        foreach (var (property, option) in OptionNames)
        {
            message = message.Replace(property, option, StringComparison.Ordinal);
        }

        return message;
    }

    // Progress<T> posts to the thread pool, so updates could arrive after the bar is gone; report in place instead.
    private sealed class SynchronousProgress(Action<VocabularyTrainingProgress> report) : IProgress<VocabularyTrainingProgress>
    {
        private readonly Lock _gate = new();

        public void Report(VocabularyTrainingProgress value)
        {
            lock (_gate)
            {
                report(value);
            }
        }
    }
}
