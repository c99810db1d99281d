using Microsoft.ML;
using MLNetTransformerExtensions.MLNet;
using static MLNetTransformerExtensions.Tests.MLNet.TextClassificationTestData;

namespace MLNetTransformerExtensions.Tests.MLNet;

/// <summary>
/// Texts that reach a fitted transformer classifier from hostile files (replacement characters from invalid UTF-8, NUL
/// and other control characters, a lone surrogate, a 1 MB line, empty or missing text) are scored: a probability in
/// [0, 1] for each row, the long line cut at the model's length as any other.
/// </summary>
[TestClass]
public sealed class HostileTextTests
{
    [TestMethod]
    public void OddTextsAreScoredWithProbabilities()
    {
        var ml = new MLContext(seed: 1);
        var model = ml.BinaryClassification.Trainers.EncoderClassifier(new EncoderClassifierOptions
        {
            ModelPath = TestPaths.Fixtures("hf-tiny", "bert"),
            NumberOfEpochs = 0,
            MaximumLength = 32,
        }).Fit(ml.Data.LoadFromEnumerable(SentimentRows(8)));
        var longText = string.Join(' ', Enumerable.Repeat("good", 200_000));
        string[] texts = ["bad \uFFFD\uFFFD\uFFFD end", "nul\0inside", "\u0001\u001F\u007F", "lone \uD800 surrogate", longText, string.Empty, "   ", "😀 emoji"];

        var scored = ml.Data.CreateEnumerable<SentimentPrediction>(
            model.Transform(ml.Data.LoadFromEnumerable(texts.Select(t => new SentimentRow { Text = t }))), reuseRowObject: false).ToList();

        Assert.HasCount(texts.Length, scored);
        for (var i = 0; i < texts.Length; i++)
        {
            Assert.IsTrue(scored[i].Probability is >= 0 and <= 1 && float.IsFinite(scored[i].Score), $"row {i}: {scored[i].Probability}");
        }

        // The 1 MB line is cut at MaximumLength tokens: it scores as its first 31 words do ([CLS] … [SEP]).
        var prefix = string.Join(' ', Enumerable.Repeat("good", 30));
        using var engine = ml.Model.CreatePredictionEngine<SentimentRow, SentimentPrediction>(model);
        Assert.AreEqual(engine.Predict(new SentimentRow { Text = prefix }).Probability, engine.Predict(new SentimentRow { Text = longText }).Probability, 1e-6);
    }
}
