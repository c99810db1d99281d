using Microsoft.ML;
using Microsoft.ML.Data;
using MLNetTransformerExtensions.MLNet;

namespace MLNetTransformerExtensions.Tests.MLNet;

public sealed class TopicRow
{
    public string Text { get; set; } = "";

    public string Label { get; set; } = "";

    /// <summary>A pass-through vector column, to check that batching copies vectors row by row.</summary>
    public float[] Features { get; set; } = [];
}

public sealed class SentimentRow
{
    public string Text { get; set; } = "";

    public bool Label { get; set; }
}

public sealed class PairRow
{
    public string Premise { get; set; } = "";

    public string Hypothesis { get; set; } = "";

    public string Label { get; set; } = "";
}

/// <summary>PredictionEngine input: the pipeline starts with MapValueToKey("Label"), so a (blank) label is needed.</summary>
public sealed class TopicInput
{
    public string Text { get; set; } = "";

    public string Label { get; set; } = "";
}

public sealed class TopicPrediction
{
    public float[] Score { get; set; } = [];

    public string PredictedLabel { get; set; } = "";
}

public sealed class SentimentPrediction
{
    public float Score { get; set; }

    public float Probability { get; set; }

    public bool PredictedLabel { get; set; }
}

/// <summary>Small synthetic data sets that a bag-of-words model can learn.</summary>
internal static class TextClassificationTestData
{
    public static readonly string[] Topics = ["sports", "cooking", "tech"];

    private static readonly string[][] s_topicWords =
    [
        ["goal", "match", "team", "coach", "league", "striker", "season"],
        ["oven", "recipe", "salt", "bake", "flour", "taste", "sauce"],
        ["code", "server", "chip", "software", "network", "cloud", "laptop"],
    ];

    private static readonly string[] s_positiveWords = ["great", "lovely", "enjoyed", "wonderful", "superb", "fun"];
    private static readonly string[] s_negativeWords = ["awful", "boring", "hated", "dull", "terrible", "waste"];
    private static readonly string[] s_sharedWords = ["the", "a", "today", "really", "new", "this"];

    /// <summary>Rows cycling through the three topics, so every fold of a split holds each of them.</summary>
    public static List<TopicRow> TopicRows(int count, int seed = 7)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(i => new TopicRow
        {
            Text = Sentence(random, s_topicWords[i % 3]),
            Label = Topics[i % 3],
            Features = [i, i * 10, i * 100],
        }).ToList();
    }

    public static List<SentimentRow> SentimentRows(int count, int seed = 11)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(i => new SentimentRow
        {
            Text = Sentence(random, i % 2 == 0 ? s_positiveWords : s_negativeWords),
            Label = i % 2 == 0,
        }).ToList();
    }

    /// <summary>Text pairs whose class depends on the second text only.</summary>
    public static List<PairRow> PairRows(int count, int seed = 13)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(i => new PairRow
        {
            Premise = Sentence(random, s_sharedWords),
            Hypothesis = Sentence(random, s_topicWords[i % 3]),
            Label = Topics[i % 3],
        }).ToList();
    }

    public static EstimatorChain<TextClassificationTransformer> MulticlassPipeline(
        MLContext ml, ITextClassificationTrainer trainer, TextClassificationOptions? options = null) =>
        ml.Transforms.Conversion.MapValueToKey(options?.LabelColumnName ?? "Label")
            .Append(new TextClassificationEstimator(ml, TextClassificationTask.Multiclass, options ?? new TextClassificationOptions(), trainer, FakeNaiveBayesClassifier.Kind));

    public static IEstimator<ITransformer> MulticlassPipelineWithLabelBack(MLContext ml, ITextClassificationTrainer trainer, TextClassificationOptions? options = null) =>
        MulticlassPipeline(ml, trainer, options).Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));

    public static TextClassificationEstimator BinaryEstimator(MLContext ml, ITextClassificationTrainer trainer, TextClassificationOptions? options = null) =>
        new(ml, TextClassificationTask.Binary, options ?? new TextClassificationOptions(), trainer, FakeNaiveBayesClassifier.Kind);

    public static TextClassificationTransformer Find(ITransformer model) =>
        model as TextClassificationTransformer
        ?? ((IEnumerable<ITransformer>)model).OfType<TextClassificationTransformer>().Single();

    public static FakeNaiveBayesClassifier Fake(ITransformer model) => (FakeNaiveBayesClassifier)Find(model).Classifier;

    private static string Sentence(Random random, string[] words)
    {
        var picked = Enumerable.Range(0, 4).Select(_ => words[random.Next(words.Length)])
            .Concat(Enumerable.Range(0, 2).Select(_ => s_sharedWords[random.Next(s_sharedWords.Length)]))
            .OrderBy(_ => random.Next());
        return string.Join(' ', picked);
    }
}
