using System.Globalization;
using System.Text.Json;
using MLNetTransformerExtensions.MLNet;
using MLNetTransformerExtensions.Tests.MLNet;
using MLNetTransformerExtensions.Training;

[assembly: TextClassificationModelFormat(FakeNaiveBayesClassifier.Kind, typeof(FakeNaiveBayesLoader))]

namespace MLNetTransformerExtensions.Tests.MLNet;

/// <summary>
/// A bag-of-words naive Bayes classifier standing in for a transformer model: real enough to learn the test
/// data (so evaluation metrics mean something), and it records every call the adapter makes.
/// </summary>
internal sealed class FakeNaiveBayesClassifier : ITextClassificationModel
{
    public const string Kind = "test-naive-bayes";

    private readonly double[] _logPriors;
    private readonly Dictionary<string, double[]> _logLikelihoods;
    private readonly double[] _unknownLogLikelihood;

    public FakeNaiveBayesClassifier(double[] logPriors, Dictionary<string, double[]> logLikelihoods, double[] unknownLogLikelihood)
    {
        _logPriors = logPriors;
        _logLikelihoods = logLikelihoods;
        _unknownLogLikelihood = unknownLogLikelihood;
    }

    public int ClassCount => _logPriors.Length;

    /// <summary>The size of each batch PredictProbabilities was called with, in order.</summary>
    public List<int> BatchSizes { get; } = [];

    /// <summary>Every text scored, in order (first texts; second texts are prefixed with "||").</summary>
    public List<string> ScoredTexts { get; } = [];

    public bool Disposed { get; private set; }

    /// <summary>When set, PredictProbabilities returns this instead of computing.</summary>
    public Func<int, float[][]>? Override { get; set; }

    public static FakeNaiveBayesClassifier Train(LabeledTexts examples, int classCount)
    {
        var k = classCount;
        var classRows = new double[k];
        var wordCounts = new Dictionary<string, double[]>();
        var totals = new double[k];
        for (var row = 0; row < examples.Count; row++)
        {
            var label = examples.Labels[row];
            classRows[label]++;
            foreach (var word in Words(examples.Texts[row], examples.SecondTexts?[row]))
            {
                if (!wordCounts.TryGetValue(word, out var counts))
                {
                    wordCounts[word] = counts = new double[k];
                }

                counts[label]++;
                totals[label]++;
            }
        }

        var vocabulary = wordCounts.Count + 1;
        var priors = classRows.Select(c => Math.Log((c + 1) / (examples.Count + k))).ToArray();
        var likelihoods = wordCounts.ToDictionary(w => w.Key, w => w.Value.Select((c, i) => Math.Log((c + 1) / (totals[i] + vocabulary))).ToArray());
        var unknown = totals.Select(t => Math.Log(1 / (t + vocabulary))).ToArray();
        return new FakeNaiveBayesClassifier(priors, likelihoods, unknown);
    }

    public float[][] PredictProbabilities(IReadOnlyList<string> texts, IReadOnlyList<string>? secondTexts)
    {
        ObjectDisposedException.ThrowIf(Disposed, this);
        BatchSizes.Add(texts.Count);
        ScoredTexts.AddRange(texts);
        if (secondTexts is not null)
        {
            ScoredTexts.AddRange(secondTexts.Select(t => "||" + t));
        }

        if (Override is not null)
        {
            return Override(texts.Count);
        }

        var result = new float[texts.Count][];
        for (var row = 0; row < texts.Count; row++)
        {
            var scores = (double[])_logPriors.Clone();
            foreach (var word in Words(texts[row], secondTexts?[row]))
            {
                var likelihood = _logLikelihoods.GetValueOrDefault(word, _unknownLogLikelihood);
                for (var i = 0; i < scores.Length; i++)
                {
                    scores[i] += likelihood[i];
                }
            }

            var max = scores.Max();
            var exp = scores.Select(s => Math.Exp(s - max)).ToArray();
            var sum = exp.Sum();
            result[row] = exp.Select(e => (float)(e / sum)).ToArray();
        }

        return result;
    }

    public void SaveTo(string folder)
    {
        // Two files, one in a subfolder, to exercise the folder format.
        File.WriteAllText(Path.Combine(folder, "config.json"), JsonSerializer.Serialize(new { priors = _logPriors, unknown = _unknownLogLikelihood }));
        Directory.CreateDirectory(Path.Combine(folder, "vocab"));
        File.WriteAllLines(Path.Combine(folder, "vocab", "words.tsv"),
            _logLikelihoods.OrderBy(w => w.Key, StringComparer.Ordinal)
                .Select(w => w.Key + "\t" + string.Join("\t", w.Value.Select(v => v.ToString("R", CultureInfo.InvariantCulture)))));
    }

    public void Dispose() => Disposed = true;

    internal static IEnumerable<string> Words(string text, string? second) =>
        text.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Concat(second?.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(w => "2:" + w) ?? [])
            .Select(w => w.ToLowerInvariant());
}

internal sealed class FakeNaiveBayesLoader : ITextClassificationModelLoader
{
    public ITextClassificationModel Load(string folder)
    {
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "config.json")));
        var priors = config.RootElement.GetProperty("priors").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        var unknown = config.RootElement.GetProperty("unknown").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        var likelihoods = File.ReadAllLines(Path.Combine(folder, "vocab", "words.tsv"))
            .Select(line => line.Split('\t'))
            .ToDictionary(parts => parts[0], parts => parts.Skip(1).Select(p => double.Parse(p, CultureInfo.InvariantCulture)).ToArray());
        return new FakeNaiveBayesClassifier(priors, likelihoods, unknown);
    }
}

/// <summary>Trains <see cref="FakeNaiveBayesClassifier"/>s and records what each Train call received.</summary>
internal sealed class FakeNaiveBayesTrainer : ITextClassificationTrainer
{
    public List<(LabeledTexts Training, LabeledTexts? Validation, IReadOnlyList<string> ClassNames, TextClassificationTrainingContext Context)> Calls { get; } = [];

    /// <summary>Runs inside Train, after recording the call (to report progress, wait for cancellation…).</summary>
    public Action<TextClassificationTrainingContext>? During { get; set; }

    /// <summary>Replaces the trained classifier's class count check, to test the adapter's.</summary>
    public Func<LabeledTexts, ITextClassificationModel>? Factory { get; set; }

    public ITextClassificationModel Train(LabeledTexts training, LabeledTexts? validation, IReadOnlyList<string> classNames, TextClassificationTrainingContext context)
    {
        Calls.Add((training, validation, classNames, context));
        During?.Invoke(context);
        return Factory?.Invoke(training) ?? FakeNaiveBayesClassifier.Train(training, classNames.Count);
    }
}
